// Worker presence on the real dev server: a command waits while a worker polls, refuses when none does, and stops
// waiting once the workers are gone (a short live window here; 90 s in use, longer than a long poll).
import { inject, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { livePollers, requireWorker, whileWorkerPolls } from '../../src/operations/worker-presence';
import { createDependencies } from '../../src/runtime/dependencies';
import { createWorker } from '../../src/temporal/worker';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

describe('worker presence', () => {
  let h: TemporalHarness;
  beforeAll(async () => {
    h = await temporalHarness(isolatedConfig());
  });
  afterAll(async () => h?.close());

  it('refuses with no worker, passes with one, and stops a wait once it is gone', async () => {
    const started = Date.now();
    await expect(requireWorker(h.client, h.taskQueue, { graceMs: 1000 })).rejects.toThrow(new RegExp(`VPB_ERR_NO_WORKER: No worker polls the task queue "${h.taskQueue}".*vaultpam-backup worker`));
    expect(Date.now() - started).toBeLessThan(10_000);

    const { worker, connection } = await createWorker({ config: h.config, deps: createDependencies(h.config), taskQueue: h.taskQueue, workflowBundlePath: inject('workflowBundlePath'), options: { shutdownGraceTime: '1 second' } });
    await worker.runUntil(async () => {
      await requireWorker(h.client, h.taskQueue, { graceMs: 20_000 });
      expect((await livePollers(h.client, h.taskQueue)).length).toBeGreaterThanOrEqual(1);
    });
    await connection.close();

    // The worker is gone; a wait that looks every second with a 3 s window gives up, naming the workflow.
    const never = new Promise<never>(() => undefined);
    const stoppedAt = Date.now();
    await expect(whileWorkerPolls(h.client, h.taskQueue, never, { checkEveryMs: 1000, liveWindowMs: 3000, workflowId: 'backup-x' })).rejects.toThrow(/VPB_ERR_NO_WORKER.*workflow backup-x waits for one/);
    expect(Date.now() - stoppedAt).toBeLessThan(30_000);
    // Work that ends first is answered as is.
    await expect(whileWorkerPolls(h.client, h.taskQueue, Promise.resolve(7), { checkEveryMs: 1000 })).resolves.toBe(7);
  });
});
