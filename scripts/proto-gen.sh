#!/usr/bin/env bash
# Regenerates the committed gRPC/protobuf TypeScript (ts-proto via buf, local plugin only).
set -euo pipefail
cd "$(dirname "$0")/../proto"
npx buf lint
rm -rf ../packages/node-runtime/src/gen
npx buf generate -o ..
