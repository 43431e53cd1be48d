// Waiting commands with no worker on the task queue: they exit non-zero within seconds, naming the task queue and
// how to start a worker, and start nothing that would wait for one.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../src/config/local-stack';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const bin = join(repoRoot, 'bin', 'vaultpam-backup.mjs');

function run(configPath: string, args: string[]): Promise<{ code: number | null; stderr: string; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, '--config', configPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

describe('waiting commands with no worker', () => {
  let h: TemporalHarness;
  let configPath: string;
  const taskQueue = `nobody-polls-${randomUUID()}`;

  beforeAll(async () => {
    const config = isolatedConfig();
    h = await temporalHarness(config);
    configPath = join(mkdtempSync(join(tmpdir(), 'vpb-no-worker-')), 'config.json');
    writeFileSync(configPath, JSON.stringify({ ...config, temporal: { ...config.temporal, taskQueue } }));
  });
  afterAll(async () => h?.close());

  it('backup --wait, backups verify and restore --wait exit 1 within seconds, naming the task queue, having started nothing', async () => {
    const results = await Promise.all([
      run(configPath, ['backup', '--wait']),
      run(configPath, ['backups', 'verify', '20261127T020000Z-1a2b3c']),
      run(configPath, ['restore', '--backup', '20261127T020000Z-1a2b3c', '--yes', '--wait']),
    ]);
    for (const r of results) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`VPB_ERR_NO_WORKER: No worker polls the task queue "${taskQueue}"`);
      expect(r.stderr).toContain('vaultpam-backup worker');
      // Node's start, the connection and a 10 s grace for a worker that is just starting; far from "forever".
      expect(r.seconds).toBeLessThan(45);
    }
    const deployment = h.config.deployment.name;
    for (const workflowId of [`backup-${deployment}`, `restore-${deployment}`]) {
      await expect(h.client.workflow.getHandle(workflowId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    }
    expect((await h.client.workflow.count(`TaskQueue = "${taskQueue}"`)).count).toBe(0);
  });
});
