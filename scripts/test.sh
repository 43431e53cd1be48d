#!/usr/bin/env bash
# The whole test suite on a fresh machine: dependencies, the local stack, type check, lint, the build, then every test.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ ! -d node_modules/vitest ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/stack.sh up
npx tsc --noEmit
npx eslint .
# The compiled build the command-line tests run, made only when dist/ is older than the sources (esbuild and the
# workflow bundle, a few seconds); global setup then takes its workflow bundle instead of making one.
node scripts/build.mjs --if-stale
npx vitest run "$@"
