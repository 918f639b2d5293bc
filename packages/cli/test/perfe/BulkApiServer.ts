/**
 * A real HTTP server on 127.0.0.1 that speaks the slice of the Elasticsearch REST API perfe uses
 * and CHECKS every request against the documented format, because no Elasticsearch-compatible
 * server can be installed here (Debian has none; the npm packages that "run Elasticsearch"
 * download it from elsewhere at run time). Checked: the product header contract of the 8.x
 * client, basic auth, `HEAD`/`PUT /<index>` with mappings, and `_bulk`: NDJSON (Content-Type
 * `application/x-ndjson` or the 8.x vendored `application/vnd.elasticsearch+x-ndjson;
 * compatible-with=8`), action/document line pairs, a final newline, `_index`/`_id` in each
 * action. Replies follow the bulk response format (`took`, `errors`, per-item `status`/`error`);
 * per-pair fault plans inject per-item 429/400 and whole-request 503s. `_search` supports the
 * `collapse` + `sort` query perfe seeds with.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"

export interface BulkRequestRecord {
  readonly atMillis: number
  readonly ids: ReadonlyArray<string>
  readonly contentType: string
}

export interface BulkApiServer {
  readonly port: number
  /** Format violations seen; a test expects none. */
  readonly violations: Array<string>
  readonly bulkRequests: Array<BulkRequestRecord>
  readonly documents: Map<string, Record<string, unknown>>
  readonly indices: Map<string, unknown>
  readonly searches: Array<unknown>
}

export interface BulkApiServerOptions {
  /** `"user:password"` expected in basic auth; undefined: none expected. */
  readonly auth?: string
  /** Per pair (`"0-2"`): item statuses for its successive sends (then 201). */
  readonly itemFaults?: ReadonlyMap<string, ReadonlyArray<number>>
  /** Statuses for the first whole bulk requests (e.g. [503]): then normal. */
  readonly requestFaults?: ReadonlyArray<number>
}

const ndjsonTypes = [/^application\/x-ndjson(;|$)/, /^application\/vnd\.elasticsearch\+x-ndjson; ?compatible-with=8$/]

const errorTypes: Record<number, string> = {
  400: "mapper_parsing_exception",
  429: "es_rejected_execution_exception",
  503: "unavailable_shards_exception",
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

export const startBulkApiServer = (options: BulkApiServerOptions = {}) =>
  Effect.acquireRelease(
    Effect.async<{ api: BulkApiServer; close: () => void }, Error>((resume) => {
      const violations: Array<string> = []
      const bulkRequests: Array<BulkRequestRecord> = []
      const documents = new Map<string, Record<string, unknown>>()
      const indices = new Map<string, unknown>()
      const searches: Array<unknown> = []
      const sends = new Map<string, number>()
      let requestFaults = [...(options.requestFaults ?? [])]

      const send = (res: ServerResponse, status: number, body?: unknown) => {
        res.writeHead(status, { "content-type": "application/json", "x-elastic-product": "Elasticsearch" })
        res.end(body === undefined ? undefined : JSON.stringify(body))
      }

      const bulk = (req: IncomingMessage, body: string, res: ServerResponse, pathIndex: string | undefined) => {
        const contentType = req.headers["content-type"] ?? ""
        if (!ndjsonTypes.some((re) => re.test(contentType))) violations.push(`_bulk Content-Type "${contentType}"`)
        if (!body.endsWith("\n")) violations.push("_bulk body does not end with a newline")
        const lines = body.split("\n")
        if (lines.at(-1) === "") lines.pop()
        if (lines.length % 2 !== 0) violations.push(`_bulk has ${lines.length} lines: not action/document pairs`)
        const items: Array<{ id: string; index: string; source: Record<string, unknown> }> = []
        for (let i = 0; i + 1 < lines.length; i += 2) {
          try {
            const action = JSON.parse(lines[i] as string) as Record<string, Record<string, unknown>>
            const source = JSON.parse(lines[i + 1] as string) as Record<string, unknown>
            const keys = Object.keys(action)
            if (keys.length !== 1 || keys[0] !== "index") violations.push(`action line ${i}: ${lines[i]}`)
            const meta = action.index ?? {}
            const index = (meta._index as string | undefined) ?? pathIndex
            if (typeof index !== "string") violations.push(`action line ${i} names no index`)
            if (typeof meta._id !== "string") violations.push(`action line ${i} has no _id`)
            if (typeof source !== "object" || source === null || Array.isArray(source)) {
              violations.push(`document line ${i + 1} is not an object`)
            }
            items.push({ id: String(meta._id), index: String(index), source })
          } catch (e) {
            violations.push(`line ${i} is not JSON: ${String(e)}`)
          }
        }
        bulkRequests.push({ atMillis: Date.now(), ids: items.map((it) => it.id), contentType })
        const fault = requestFaults.shift()
        if (fault !== undefined) {
          return send(res, fault, { error: { type: errorTypes[fault] ?? "error", reason: "injected" }, status: fault })
        }
        const results = items.map((item) => {
          const pair = String(item.source.pair)
          const n = sends.get(pair) ?? 0
          sends.set(pair, n + 1)
          const status = options.itemFaults?.get(pair)?.[n] ?? 201
          if (status >= 300) {
            return {
              index: {
                _index: item.index,
                _id: item.id,
                status,
                error: { type: errorTypes[status] ?? "error", reason: `injected ${status} for ${pair}` },
              },
            }
          }
          const created = !documents.has(item.id)
          documents.set(item.id, item.source)
          return {
            index: {
              _index: item.index,
              _id: item.id,
              _version: 1,
              result: created ? "created" : "updated",
              _shards: { total: 1, successful: 1, failed: 0 },
              _seq_no: documents.size,
              _primary_term: 1,
              status: created ? 201 : 200,
            },
          }
        })
        send(res, 200, { took: 1, errors: results.some((r) => r.index.status >= 300), items: results })
      }

      const search = (body: string, res: ServerResponse, index: string) => {
        const query = JSON.parse(body || "{}") as { collapse?: { field?: string }; size?: number }
        searches.push(query)
        if (!indices.has(index)) {
          return send(res, 404, {
            error: { type: "index_not_found_exception", reason: `no such index [${index}]` },
            status: 404,
          })
        }
        const field = query.collapse?.field
        const newest = new Map<unknown, Record<string, unknown>>()
        const sorted = [...documents.values()].sort((a, b) =>
          String(b["@timestamp"]).localeCompare(String(a["@timestamp"])),
        )
        for (const d of sorted) {
          const key = field === undefined ? Symbol() : d[field]
          if (!newest.has(key)) newest.set(key, d)
        }
        const hits = [...newest.values()]
          .slice(0, query.size ?? 10)
          .map((d) => ({ _index: index, _id: "x", _source: d }))
        send(res, 200, {
          took: 1,
          timed_out: false,
          _shards: { total: 1, successful: 1, skipped: 0, failed: 0 },
          hits: { total: { value: hits.length, relation: "eq" }, max_score: null, hits },
        })
      }

      const server = createServer((req, res) => {
        void readBody(req).then((body) => {
          if (options.auth !== undefined) {
            const expected = `Basic ${Buffer.from(options.auth).toString("base64")}`
            if (req.headers.authorization !== expected) {
              violations.push(`authorization ${req.headers.authorization ?? "(none)"}`)
              return send(res, 401, { error: { type: "security_exception" }, status: 401 })
            }
          }
          const url = new URL(req.url ?? "/", "http://x")
          const parts = url.pathname.split("/").filter((p) => p !== "")
          if (parts.at(-1) === "_bulk" && (req.method === "POST" || req.method === "PUT")) {
            return bulk(req, body, res, parts.length === 2 ? parts[0] : undefined)
          }
          if (parts.length === 2 && parts[1] === "_search" && (req.method === "POST" || req.method === "GET")) {
            return search(body, res, parts[0] as string)
          }
          if (parts.length === 1 && req.method === "HEAD") return send(res, indices.has(parts[0] as string) ? 200 : 404)
          if (parts.length === 1 && req.method === "PUT") {
            const index = parts[0] as string
            if (indices.has(index)) {
              return send(res, 400, { error: { type: "resource_already_exists_exception" }, status: 400 })
            }
            const parsed = JSON.parse(body || "{}") as { mappings?: unknown }
            if (parsed.mappings === undefined) violations.push(`PUT /${index} without mappings`)
            indices.set(index, parsed.mappings)
            return send(res, 200, { acknowledged: true, shards_acknowledged: true, index })
          }
          violations.push(`unexpected ${req.method} ${req.url}`)
          send(res, 400, { error: { type: "illegal_argument_exception", reason: "not supported by the test server" } })
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as AddressInfo).port
        resume(
          Effect.succeed({
            api: { port, violations, bulkRequests, documents, indices, searches },
            close: () => {
              server.closeAllConnections()
              server.close()
            },
          }),
        )
      })
      server.on("error", (e) => resume(Effect.fail(e)))
      requestFaults = [...requestFaults]
    }),
    ({ close }) => Effect.sync(close),
  ).pipe(Effect.map(({ api }) => api))
