// Runs a real worker (real Temporal dev server, prebuilt workflow bundle) on a task queue of its own for one test.
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { WorkerLogger } from '../../src/temporal/worker-logger';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import type { ActivityMetrics } from '../../src/metrics/activity-metrics';
import { createDependencies, type DependencyOverrides } from '../../src/runtime/dependencies';
import { connectClient } from '../../src/temporal/connect';
import { createWorker } from '../../src/temporal/worker';

export interface TemporalHarness {
  config: Config;
  client: Client;
  taskQueue: string;
  /** Runs fn while a worker polls this harness's task queue. */
  withWorker<T>(fn: () => Promise<T>, overrides?: DependencyOverrides, config?: Config, metrics?: ActivityMetrics): Promise<T>;
  close(): Promise<void>;
}

let runtimeInstalled = false;

export async function temporalHarness(config: Config = loadConfig({ env: { ...process.env, VAULTPAM_BACKUP_CONFIG: '' } })): Promise<TemporalHarness> {
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    Runtime.install({ logger: new WorkerLogger('WARN') });
  }
  const client = await connectClient(config);
  const taskQueue = `test-${randomUUID()}`;
  return {
    config,
    client,
    taskQueue,
    async withWorker(fn, overrides = {}, workerConfig = config, metrics) {
      const { worker, connection } = await createWorker({
        config: workerConfig,
        deps: createDependencies(workerConfig, overrides),
        taskQueue,
        workflowBundlePath: inject('workflowBundlePath'),
        options: { shutdownGraceTime: '2 seconds' },
        ...(metrics ? { metrics } : {}),
      });
      try {
        return await worker.runUntil(fn());
      } finally {
        await connection.close();
      }
    },
    async close() {
      await client.connection.close();
    },
  };
}
