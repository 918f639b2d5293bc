#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (root, Node >= 20): system packages the
# twin and the daemon need, then the npm workspace and its TypeScript build.
# Safe to run again and again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

# Debian packages, keyed by a command (or file) each one provides.
declare -A NEED=(
  [wireguard-go]=wireguard-go
  [wg]=wireguard-tools
  [bird]=bird2
  [ip]=iproute2
  [nft]=nftables
  [ping]=iputils-ping
  [pgrep]=procps
  [unshare]=util-linux
  [killall]=psmisc
  [promtool]=prometheus
  [prometheus]=prometheus
  [chromium]=chromium
  [openssl]=openssl
  [curl]=curl
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
for pkg in ${NETPERF_EXTRA_PACKAGES:-}; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing system packages: ${missing[*]} (run this script as root to install them)"
    exit 1
  fi
  log "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # `prometheus` is run by tests and the twin on their own addresses: on a systemd host its package
  # also starts a server on :9090, which nothing here wants.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled prometheus >/dev/null 2>&1; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
  log "Node >= 20 is required (found $(node -v))"
  exit 1
fi

# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.netperf-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

log "building (tsc -b)"
npx tsc -b
