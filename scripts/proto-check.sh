#!/usr/bin/env bash
# Fails when the committed gRPC code in packages/node-runtime/src/gen is not what `buf generate`
# makes from proto/ now (someone edited a .proto and forgot `npm run proto:gen`, or edited gen/).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd proto && npx buf lint && npx buf generate -o "$tmp")
# buf.gen.yaml paths are relative to the output root given with -o.
gen="$tmp/packages/node-runtime/src/gen"
if ! diff -ru "$gen" packages/node-runtime/src/gen; then
  echo "proto-check: generated code is stale; run 'npm run proto:gen' and commit the result" >&2
  exit 1
fi
echo "proto-check: generated code is current"
