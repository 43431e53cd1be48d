#!/usr/bin/env node
// The vaultpam-backup command: the compiled build (dist/cli.js); in a checkout without a current build, the TypeScript sources through tsx.
import { fileURLToPath } from 'node:url';
import { buildState } from './build-freshness.mjs';

const state = buildState(fileURLToPath(new URL('..', import.meta.url)));
if (state === 'current') {
  await import('../dist/cli.js');
} else {
  // Development: still works, at tsx's speed (seconds to start); `npm run build` makes dist/ current again.
  const why = state === 'missing' ? 'no compiled build in dist/' : 'dist/ is older than the sources';
  process.stderr.write(`vaultpam-backup: ${why}; running the TypeScript sources through tsx (npm run build to compile)\n`);
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
