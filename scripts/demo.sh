#!/usr/bin/env bash
# The main job on the embedded default: install, build, provision the local stack and sandbox VaultPAM, run the workflows.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ ! -d node_modules/tsx ]; then
  npm ci --no-audit --no-fund
fi
# Compiled when dist/ is missing or older than the sources (a few seconds), so the demo runs what the image runs.
node scripts/build.mjs --if-stale
exec node bin/vaultpam-backup.mjs demo "$@"
