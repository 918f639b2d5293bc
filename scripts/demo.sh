#!/usr/bin/env bash
# The main command: set up (idempotent), then the demo — a six-site digital twin (network
# namespaces, real WireGuard and BIRD, the real net-perf daemon per site) plays a timeline
# (a best-path link degraded by +50 ms one way, a link failure, the repair) twice: plain BIRD
# first (the baseline), then net-perf. It prints both side by side, writes demo-report.html and
# demo-report.json, and removes everything it created. Needs root (network namespaces).
# Arguments are passed to `netlab run` (e.g. --json); NETPERF_DEMO_SCENARIO picks another scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent demo -- "$@"
