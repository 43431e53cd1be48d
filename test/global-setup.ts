// Test suite setup: the real local stack up (idempotent), and the workflow bundle built once for every test file.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { localStackDir, repoRoot } from '../src/config/local-stack';
import { workflowsPath } from '../src/temporal/worker';

declare module 'vitest' {
  export interface ProvidedContext {
    workflowBundlePath: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  execFileSync('bash', [join(repoRoot, 'scripts', 'stack.sh'), 'up'], { stdio: 'inherit' });
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: { info: () => {}, warn: () => {}, error: console.error, debug: () => {}, trace: () => {}, log: () => {} } });
  const dir = join(localStackDir(), 'test');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'workflow-bundle.js');
  writeFileSync(path, code);
  project.provide('workflowBundlePath', path);
}
