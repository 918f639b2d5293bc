#!/usr/bin/env bash
# The main command: set up (idempotent), then run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent demo -- "$@"
