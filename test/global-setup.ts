// Test suite setup: the real local stack up (idempotent), and the workflow bundle built once for every test file (or taken from a current dist/).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { localStackDir, repoRoot } from '../src/config/local-stack';
import { prebuiltWorkflowBundlePath } from '../src/runtime/install-layout';
import { workflowsPath } from '../src/temporal/worker';
import { buildState } from '../bin/build-freshness.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    workflowBundlePath: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  execFileSync('bash', [join(repoRoot, 'scripts', 'stack.sh'), 'up'], { stdio: 'inherit' });
  const dir = join(localStackDir(), 'test');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'workflow-bundle.js');
  if (buildState(repoRoot) === 'current') {
    // dist/ was built from these very sources (scripts/test.sh builds first): its bundle, copied so a rebuild meanwhile cannot pull it away.
    copyFileSync(prebuiltWorkflowBundlePath, path);
  } else {
    const { code } = await bundleWorkflowCode({ workflowsPath, logger: { info: () => {}, warn: () => {}, error: console.error, debug: () => {}, trace: () => {}, log: () => {} } });
    writeFileSync(path, code);
  }
  project.provide('workflowBundlePath', path);
}
