/**
 * The daemon's live mesh page (`GET /` on the metrics port): one HTML document with inline CSS
 * and script that polls `/status` every few seconds and draws the mesh matrix (sites × sites,
 * coloured by current cost), the tunnel table and the current route per destination with the
 * algorithm that produced it and why the ones before it in the chain could not.
 *
 * Decision: the page is static (`renderLivePage()` is a pure string) and everything live comes
 * from the JSON the daemon already serves. `LiveStatus` is the plane's `/status` plus optional
 * `routes`, `mesh` and `configuredAlgorithm`; the page draws whatever subset is there. The
 * script builds the DOM with textContent only, so nothing in the JSON can inject markup.
 */
import type { RoutingDecision } from "@net-perf/engine"

/** Per-tunnel figures as the page reads them (the plane's `TunnelStatus` satisfies this). */
export interface LiveTunnel {
  readonly name: string
  readonly local: number
  readonly remote: number
  readonly family: 4 | 6
  readonly active: boolean
  readonly disabled?: boolean
  readonly stats: {
    readonly state: "up" | "dead" | "unknown"
    readonly rttMs: number | null
    readonly jitterMs: number
    readonly lossRatio: number
    readonly availability?: number
    readonly lastSampleAtMillis: number | null
    readonly lastReplyAtMillis?: number | null
  } | null
  /** Engine link cost in ms-equivalent; null = unusable. */
  readonly costMs: number | null
}

export interface LiveRoute {
  readonly destination: number
  /** null = no managed route (BIRD's own route applies). */
  readonly nextHop: number | null
  readonly interfaceName: string | null
  /** null when the engine's cost is infinite. */
  readonly costMs: number | null
  readonly path: ReadonlyArray<number>
  readonly algorithm: string | null
  readonly fallbacks: ReadonlyArray<{ readonly algorithm: string; readonly reason: string }>
  readonly stability?: string
  readonly starved?: boolean
}

/** A directed link between two other sites, as learnt from their link-state messages. */
export interface LiveMeshLink {
  readonly from: number
  readonly to: number
  readonly family?: 4 | 6
  readonly costMs: number | null
  readonly rttMs: number | null
  readonly lossRatio: number | null
  readonly jitterMs: number | null
}

/** The JSON the live page fetches. The plane's `PlaneStatus` is already a valid `LiveStatus`. */
export interface LiveStatus {
  readonly localSite: number | null
  readonly atMillis: number
  readonly tunnels: ReadonlyArray<LiveTunnel>
  readonly confErrors?: ReadonlyArray<{ readonly file: string; readonly line: number; readonly reason: string }>
  readonly configuredAlgorithm?: string
  readonly routes?: ReadonlyArray<LiveRoute>
  readonly mesh?: ReadonlyArray<LiveMeshLink>
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null)

/** The engine's last decision as the page's `routes` (Infinity becomes null for JSON). */
export const liveRoutesOf = (decision: RoutingDecision): ReadonlyArray<LiveRoute> =>
  decision.routes.map((r) => ({
    destination: r.destination,
    nextHop: r.nextHop,
    interfaceName: r.interfaceName,
    costMs: finiteOrNull(r.costMs),
    path: [...r.path],
    algorithm: r.algorithm,
    fallbacks: r.fallbacks.map((f) => ({ algorithm: f.algorithm, reason: f.reason })),
    stability: r.stability,
    starved: r.starved,
  }))

/** `/status` for the page: the plane's status plus the daemon's routing view, when it has one. */
export const liveStatusOf = <S extends LiveStatus>(
  plane: S,
  routing: {
    readonly decision?: RoutingDecision | undefined
    readonly configuredAlgorithm?: string
    readonly mesh?: ReadonlyArray<LiveMeshLink>
  } = {},
): S & Pick<LiveStatus, "routes" | "configuredAlgorithm" | "mesh"> => ({
  ...plane,
  ...(routing.decision === undefined ? {} : { routes: liveRoutesOf(routing.decision) }),
  ...(routing.configuredAlgorithm === undefined ? {} : { configuredAlgorithm: routing.configuredAlgorithm }),
  ...(routing.mesh === undefined ? {} : { mesh: routing.mesh }),
})

export interface LivePageOptions {
  /** Where the page fetches its JSON (relative to the page). */
  readonly statusPath?: string
  readonly refreshMillis?: number
  readonly title?: string
}

/** Headers to send with the page: HTML, never cached, and a policy allowing only same-origin fetches. */
export const livePageHeaders: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
  "x-content-type-options": "nosniff",
}

const stylesheet = `
:root { --fg:#1b1b1b; --muted:#5f6368; --rule:#d0d4da; --band:#f4f6f8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: var(--fg);
  margin: 0 auto; padding: 1rem 1.5rem 2rem; max-width: 1200px; }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; padding-bottom: .2rem; border-bottom: 1px solid var(--rule); }
#meta { color: var(--muted); margin: .2rem 0 .6rem; }
#error { display: none; background: #fff1e6; border: 1px solid #D55E00; color: #7a2e00; padding: .4rem .7rem; margin: .5rem 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: .9rem; }
th, td { padding: .28rem .55rem; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
thead th { background: var(--band); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
.matrix td, .matrix th { text-align: center; border: 1px solid #fff; min-width: 4.4rem; }
.matrix td { font-weight: 600; }
.matrix td small { display: block; font-weight: 400; font-size: .72rem; }
.matrix th { background: var(--band); }
.self { background: #eceff1; color: #9aa0a6; }
.up { color: #006d4f; font-weight: 600; } .dead { color: #b34700; font-weight: 600; } .unknown { color: var(--muted); }
.legend span { display: inline-block; margin: 0 .9rem .3rem 0; }
.sw { display: inline-block; width: 1em; height: 1em; vertical-align: -.15em; margin-right: .3em; border: 1px solid #0003; }
.muted { color: var(--muted); }
@media print { #error { display: none !important; } body { max-width: none; } }
`

/*
 * Cost buckets: a sequential light-to-dark blue scale (reads in grey and for every colour-vision
 * type), dead links in Okabe–Ito vermillion with a cross, unknown in grey.
 */
const clientScript = `
"use strict";
(function () {
  var cfg = JSON.parse(document.getElementById("live-config").textContent);
  var BUCKETS = [[5, "#deebf7", "#1b1b1b"], [15, "#b6d4ea", "#1b1b1b"], [40, "#6baed6", "#1b1b1b"], [100, "#2f7fbf", "#fff"], [Infinity, "#08306b", "#fff"]];
  var DEAD = ["#D55E00", "#fff"], UNKNOWN = ["#e0e0e0", "#1b1b1b"];
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function fmt(x, d, unit) { return x === null || x === undefined || !isFinite(x) ? "—" : x.toFixed(d) + (unit || ""); }
  function pct(x) { return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + " %"; }
  function age(ms, now) { return ms === null || ms === undefined ? "never" : ((now - ms) / 1000).toFixed(1) + " s ago"; }
  function table(id, header, rows, numeric) {
    var t = document.getElementById(id); t.replaceChildren();
    var thead = el("thead"), tr = el("tr");
    header.forEach(function (h) { tr.appendChild(el("th", h)); }); thead.appendChild(tr); t.appendChild(thead);
    var tb = el("tbody");
    rows.forEach(function (r) { var row = el("tr"); r.forEach(function (c, i) { var td = c instanceof Node ? (function () { var x = el("td"); x.appendChild(c); return x; })() : el("td", c); if (numeric && numeric[i]) td.className = "num"; row.appendChild(td); }); tb.appendChild(row); });
    if (rows.length === 0) { var row = el("tr"), td = el("td", "none", "muted"); td.colSpan = header.length; row.appendChild(td); tb.appendChild(row); }
    t.appendChild(tb);
  }
  function links(s) {
    var m = new Map();
    function put(from, to, l) { var k = from + ">" + to, cur = m.get(k); if (!cur) { cur = []; m.set(k, cur); } cur.push(l); }
    (s.tunnels || []).forEach(function (t) { var st = t.stats; put(t.local, t.remote, { family: t.family, costMs: t.costMs, rttMs: st ? st.rttMs : null, lossRatio: st ? st.lossRatio : null, jitterMs: st ? st.jitterMs : null, state: st ? st.state : "unknown" }); });
    (s.mesh || []).forEach(function (l) { if (s.localSite !== null && l.from === s.localSite) return; put(l.from, l.to, { family: l.family, costMs: l.costMs, rttMs: l.rttMs, lossRatio: l.lossRatio, jitterMs: l.jitterMs, state: l.costMs === null ? "dead" : "up" }); });
    return m;
  }
  function matrix(s) {
    var m = links(s), sites = new Set();
    if (s.localSite !== null && s.localSite !== undefined) sites.add(s.localSite);
    m.forEach(function (_, k) { var p = k.split(">"); sites.add(Number(p[0])); sites.add(Number(p[1])); });
    (s.routes || []).forEach(function (r) { sites.add(r.destination); });
    var ids = Array.from(sites).sort(function (a, b) { return a - b; });
    var t = document.getElementById("matrix"); t.replaceChildren();
    var head = el("tr"); head.appendChild(el("th", "from \\\\ to"));
    ids.forEach(function (j) { head.appendChild(el("th", j)); });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var tb = el("tbody");
    ids.forEach(function (i) {
      var row = el("tr"); row.appendChild(el("th", i));
      ids.forEach(function (j) {
        var td = el("td");
        if (i === j) { td.className = "self"; td.textContent = "·"; row.appendChild(td); return; }
        var ls = m.get(i + ">" + j);
        if (!ls) { td.className = "muted"; td.textContent = "—"; td.title = "no data for " + i + " → " + j; row.appendChild(td); return; }
        var live = ls.filter(function (l) { return l.costMs !== null && l.costMs !== undefined; });
        var best = live.sort(function (a, b) { return a.costMs - b.costMs; })[0];
        var colours = best ? BUCKETS.find(function (b) { return best.costMs < b[0]; }).slice(1) : (ls.some(function (l) { return l.state === "dead"; }) ? DEAD : UNKNOWN);
        td.style.background = colours[0]; td.style.color = colours[1];
        td.textContent = best ? fmt(best.costMs, 1) : (colours === DEAD ? "✕ dead" : "?");
        if (best) td.appendChild(el("small", fmt(best.rttMs, 1, " ms") + " · " + pct(best.lossRatio)));
        td.title = i + " → " + j + "\\n" + ls.map(function (l) { return "v" + (l.family || "?") + ": cost " + fmt(l.costMs, 1) + ", RTT " + fmt(l.rttMs, 1, " ms") + ", loss " + pct(l.lossRatio) + ", jitter " + fmt(l.jitterMs, 1, " ms") + " (" + l.state + ")"; }).join("\\n");
        row.appendChild(td);
      });
      tb.appendChild(row);
    });
    t.appendChild(tb);
  }
  function render(s) {
    var now = s.atMillis || Date.now();
    document.getElementById("meta").textContent = "site " + (s.localSite === null ? "?" : s.localSite) + " · status at " + new Date(now).toLocaleTimeString() + (s.configuredAlgorithm ? " · configured algorithm " + s.configuredAlgorithm : "") + " · refresh every " + (cfg.refreshMillis / 1000) + " s";
    matrix(s);
    var tunnels = (s.tunnels || []).slice().sort(function (a, b) { return a.remote - b.remote || a.family - b.family; });
    table("tunnels", ["tunnel", "peer", "family", "up", "RTT (ms)", "loss", "jitter (ms)", "cost (ms-eq)", "last probe"], tunnels.map(function (t) {
      var st = t.stats, state = st ? st.state : "unknown";
      return [t.name, t.remote, "IPv" + t.family, el("span", t.disabled ? "disabled" : !t.active ? "inactive" : state, state), st ? fmt(st.rttMs, 2) : "—", st ? pct(st.lossRatio) : "—", st ? fmt(st.jitterMs, 2) : "—", fmt(t.costMs, 1), st ? age(st.lastSampleAtMillis, now) : "never"];
    }), [false, true, false, false, true, true, true, true, true]);
    var routes = (s.routes || []).slice().sort(function (a, b) { return a.destination - b.destination; });
    document.getElementById("routes-note").textContent = s.routes ? "" : "This daemon's /status carries no routes yet.";
    table("routes", ["destination", "next hop", "interface", "path", "cost (ms-eq)", "algorithm", "fallback reason"], routes.map(function (r) {
      return [r.destination, r.nextHop === null ? "BIRD" : r.nextHop, r.interfaceName || "—", (r.path || []).join(" → "), fmt(r.costMs, 1), (r.algorithm || "none") + (r.starved ? " (starved)" : ""), r.fallbacks.length === 0 ? "—" : r.fallbacks.map(function (f) { return f.algorithm + ": " + f.reason; }).join("; ")];
    }), [true, true, false, false, true, false, false]);
    var errs = s.confErrors || [];
    document.getElementById("conf-errors").textContent = errs.length === 0 ? "" : "WireGuard conf errors: " + errs.map(function (e) { return e.file + ":" + e.line + " " + e.reason; }).join("; ");
  }
  function tick() {
    fetch(cfg.statusPath, { cache: "no-store", headers: { accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) { render(s); document.getElementById("error").style.display = "none"; })
      .catch(function (e) { var b = document.getElementById("error"); b.textContent = "Cannot read " + cfg.statusPath + ": " + e.message + " (showing the last view)"; b.style.display = "block"; })
      .finally(function () { setTimeout(tick, cfg.refreshMillis); });
  }
  tick();
})();
`

const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** The whole page; pure, so the server can render it once and serve the same string. */
export const renderLivePage = (options: LivePageOptions = {}): string => {
  const config = { statusPath: options.statusPath ?? "status", refreshMillis: options.refreshMillis ?? 3000 }
  const title = options.title ?? "net-perf live mesh"
  // JSON inside <script type="application/json">: escape "<" so "</script>" cannot end the block.
  const configJson = JSON.stringify(config).replace(/</g, "\\u003c")
  const legend = [
    ["#deebf7", "< 5"],
    ["#b6d4ea", "5–15"],
    ["#6baed6", "15–40"],
    ["#2f7fbf", "40–100"],
    ["#08306b", "≥ 100 ms-eq"],
    ["#D55E00", "dead"],
    ["#e0e0e0", "unknown"],
  ]
    .map(([c, t]) => `<span><i class="sw" style="background:${c}"></i>${escapeHtml(t as string)}</span>`)
    .join("")
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${stylesheet}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p id="meta">loading…</p>
<div id="error" role="alert"></div>
<h2>Mesh (cost in ms-equivalent; hover a cell for RTT, loss and jitter per family)</h2>
<p class="legend">${legend}</p>
<table id="matrix" class="matrix"></table>
<p class="muted">Row = from, column = to. This site's row is measured here; other rows come from peers' link-state messages when the daemon publishes them.</p>
<h2>Tunnels</h2>
<table id="tunnels"></table>
<p id="conf-errors" class="dead"></p>
<h2>Routes per destination</h2>
<p id="routes-note" class="muted"></p>
<table id="routes"></table>
<script type="application/json" id="live-config">${configJson}</script>
<script>${clientScript}</script>
</body>
</html>
`
}
