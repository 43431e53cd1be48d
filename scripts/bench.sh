#!/usr/bin/env bash
# Benchmark: the local stack up, then scripts/bench.ts (backup, verify and restore figures) with the given flags;
# with --cli first, scripts/bench-cli.ts (start-up time of the compiled command line, memory of an idle worker); with
# --recovery-point first, scripts/bench-recovery-point.ts (point-in-time protection's recovery point under load).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ ! -d node_modules/tsx ]; then
  npm ci --no-audit --no-fund
fi
# Provisioning talk goes to stderr, so stdout holds only the figures (npm run bench > figures.md).
bash scripts/stack.sh up >&2
if [ "${1:-}" = "--cli" ]; then
  # Start-up figures of the compiled build: the command line and an idle worker.
  shift
  node scripts/build.mjs --if-stale >&2
  exec node --import tsx scripts/bench-cli.ts "$@"
fi
if [ "${1:-}" = "--recovery-point" ]; then
  # Point-in-time protection's recovery point under a steady write load, with the compiled worker.
  node scripts/build.mjs --if-stale >&2
  exec node --import tsx scripts/bench-recovery-point.ts "$@"
fi
# --compare and --scale run the compiled worker (dist/), as an operator does.
node scripts/build.mjs --if-stale >&2
# --expose-gc: the benchmark collects garbage before each phase, so each peak RSS belongs to that phase.
exec node --expose-gc --import tsx scripts/bench.ts "$@"
