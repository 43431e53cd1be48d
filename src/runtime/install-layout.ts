// Where this installation's files are, whether the code runs from its TypeScript sources or compiled into dist/.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * True when this code runs from the compiled build: dist/*.js (every module and chunk sits directly in dist/), as
 * opposed to src/runtime/install-layout.ts loaded by tsx or vitest.
 */
export const runsCompiled = !import.meta.url.endsWith('.ts');

/** The folder holding package.json, scripts/ and dist/ (the image's /app). */
export const repoRoot = runsCompiled ? resolve(here, '..') : resolve(here, '../..');

/** The compiled build (`npm run build`). */
export const distDir = join(repoRoot, 'dist');

/** The workflow code bundled at build time, loaded by compiled workers instead of bundling workflows/ at start. */
export const prebuiltWorkflowBundlePath = join(distDir, 'workflow-bundle.js');

/** The workflows' sources, bundled by the worker at start when it runs from sources (development). */
export const workflowsSourcePath = join(repoRoot, 'workflows', 'index.ts');
