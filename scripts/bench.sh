#!/usr/bin/env bash
# Benchmark: the local stack up, then scripts/bench.ts (backup, verify and restore figures) with the given flags.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ ! -d node_modules/tsx ]; then
  npm ci --no-audit --no-fund
fi
# Provisioning talk goes to stderr, so stdout holds only the figures (npm run bench > figures.md).
bash scripts/stack.sh up >&2
# --expose-gc: the benchmark collects garbage before each phase, so each peak RSS belongs to that phase.
exec node --expose-gc --import tsx scripts/bench.ts "$@"
