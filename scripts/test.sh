#!/usr/bin/env bash
# The test command: set up (idempotent), then typecheck + lint + every package's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
