#!/usr/bin/env bash
# One entry point for every benchmark: `npm run bench -- <name> [args…]` (root of the repo).
# Each bench prints figures (most take --json); this only dispatches, so every bench's own
# --help stays the reference for its options.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: npm run bench -- <name> [args…]      (npm run bench -- <name> --help for its options)

  targets      issue-8 routing targets in the twin (netns-lab/bench-targets.mjs; root, netns)
  twin         twin bring-up/teardown and plain-BIRD convergence (netns-lab/bench-twin.mjs)
  model        model simulator at N = 50/200 (packages/simulator, bench:model)
  engine       engine micro-benchmarks (packages/engine, bench)
  overhead     measurement plane CPU/RSS at 10/50/100 tunnels (node-runtime/bench/overhead.ts)
  detection    hard-failure detection time of the echo (node-runtime/bench/detection.ts; root)
  accuracy     probe RTT/loss error against injected delay and loss (node-runtime/bench/accuracy.ts; root)
  dgram-floor  bare Node dgram loop: the CPU floor of the echo's datagrams (node-runtime/bench/dgram-floor.mjs)
  metrics-store  metrics-store client against a real Prometheus (node-runtime/bench/metricsStore.ts)
  wire-decode  CPU per received link-state message, Schema vs hand-written checks (node-runtime/bench/wireDecode.ts)
  meshgen      mesh config generator at scale (cli/src/meshgen/bench.ts)

The machine is shared and noisy: compare side by side in one run and report the load average.
EOF
}

name="${1:-}"
[ $# -gt 0 ] && shift
# The twin and the CLI benches run the workspace build.
build() { npx tsc -b >&2; }

case "$name" in
  targets) build && exec node netns-lab/bench-targets.mjs "$@" ;;
  twin) build && exec node netns-lab/bench-twin.mjs "$@" ;;
  model) exec npm run --silent bench:model -w packages/simulator -- "$@" ;;
  engine) exec npm run --silent bench -w packages/engine -- "$@" ;;
  overhead | detection | accuracy)
    exec npx vite-node --config vitest.config.ts "packages/node-runtime/bench/$name.ts" "$@" ;;
  metrics-store) exec npx vite-node --config vitest.config.ts packages/node-runtime/bench/metricsStore.ts "$@" ;;
  wire-decode) exec npx vite-node --config vitest.config.ts packages/node-runtime/bench/wireDecode.ts "$@" ;;
  dgram-floor) exec node packages/node-runtime/bench/dgram-floor.mjs "$@" ;;
  meshgen) exec npx vite-node --config vitest.config.ts packages/cli/src/meshgen/bench.ts "$@" ;;
  "" | -h | --help | help) usage ;;
  *)
    echo "unknown bench: $name" >&2
    usage >&2
    exit 2
    ;;
esac
