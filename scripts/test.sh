#!/usr/bin/env bash
# The whole test suite on a fresh machine: dependencies, the local stack, type check, lint, then every test.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ ! -d node_modules/vitest ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/stack.sh up
npx tsc --noEmit
npx eslint .
npx vitest run "$@"
