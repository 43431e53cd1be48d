// The compiled build: the command line bundled by esbuild into dist/ (ES modules, dependencies left in node_modules), and the workflow code bundled for workers.
//
//   node scripts/build.mjs              build into dist/
//   node scripts/build.mjs --if-stale   only when dist/ is missing or older than the sources (scripts/test.sh, demo.sh)
//
// Type checking is `tsc` (npm run build runs tsc -p tsconfig.build.json first); esbuild only strips types.
import console from 'node:console';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { buildState } from '../bin/build-freshness.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const staging = join(root, 'dist.partial');

if (process.argv.includes('--if-stale') && buildState(root) === 'current') {
  process.stderr.write('build: dist/ is current\n');
  process.exit(0);
}

const started = Date.now();
await rm(staging, { recursive: true, force: true });
await mkdir(staging, { recursive: true });

// One flat folder: every module and chunk sits directly in dist/, which src/runtime/install-layout.ts relies on.
// Splitting keeps each dynamic import() a chunk of its own, so `--help` loads none of the heavy modules.
await build({
  absWorkingDir: root,
  entryPoints: { cli: 'src/cli/main.ts' },
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: '[name]-[hash]',
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});

// The worker loads this instead of running webpack over workflows/ at start (seconds, and ~120 MiB it keeps).
const { bundleWorkflowCode } = await import('@temporalio/worker');
const quiet = { info() {}, warn: console.warn, error: console.error, debug() {}, trace() {}, log() {} };
const { code } = await bundleWorkflowCode({ workflowsPath: join(root, 'workflows', 'index.ts'), logger: quiet });
await writeFile(join(staging, 'workflow-bundle.js'), code);

// Swapped in whole, the stamp written last: a build that fails half way never passes for a current one.
await rm(dist, { recursive: true, force: true });
await rename(staging, dist);
await writeFile(join(dist, 'build-info.json'), `${JSON.stringify({ builtAt: new Date().toISOString(), node: process.version }, null, 2)}\n`);
process.stderr.write(`build: dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
