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

// Dependencies left in node_modules: the Temporal SDK (a native core, and the worker bundles workflow code from
// its files), pino and fastify (pino starts transports from files of its own), pg and prom-client. Every other
// dependency (minio with its XML and stream libraries, zod, commander, cli-progress) is pure JavaScript and is bundled
// into the chunks that use it: Node then resolves, reads and links one file instead of a few hundred, which was most
// of the start-up of `backups list`.
const EXTERNAL = ['@temporalio/*', 'pino', 'pino-*', 'fastify', '@fastify/*', 'pg', 'pg-native', 'prom-client'];

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
  external: EXTERNAL,
  // Bundled CommonJS calls require() for Node's built-ins: an ES module has none, so each chunk makes its own.
  banner: { js: "import { createRequire as __vaultpamCreateRequire } from 'node:module'; const require = __vaultpamCreateRequire(import.meta.url);" },
  chunkNames: '[name]-[hash]',
  sourcemap: true,
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
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
