// The worker: real clients built once, the activities from their factory, the workflows from workflows/ (or a prebuilt bundle).
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../../activities';
import type { Config } from '../config/schema';
import { createDependencies, type Dependencies } from '../runtime/dependencies';
import type { ActivityMetrics } from '../metrics/activity-metrics';

export const workflowsPath = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

export interface WorkerSetup {
  config: Config;
  /** Default: built from the configuration. */
  deps?: Dependencies;
  /** Default: config.temporal.taskQueue. */
  taskQueue?: string;
  /** A prebuilt workflow bundle (tests build it once); default: bundle workflows/ at start. */
  workflowBundlePath?: string;
  options?: Partial<WorkerOptions>;
  /** Activity metrics to record into (the worker command serves them on worker.metricsPort). */
  metrics?: ActivityMetrics;
}

export async function createWorker(setup: WorkerSetup): Promise<{ worker: Worker; connection: NativeConnection }> {
  const deps = setup.deps ?? createDependencies(setup.config);
  const connection = await NativeConnection.connect({ address: setup.config.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: setup.config.temporal.namespace,
    taskQueue: setup.taskQueue ?? setup.config.temporal.taskQueue,
    activities: createActivities(deps),
    ...(setup.workflowBundlePath ? { workflowBundle: { codePath: setup.workflowBundlePath } } : { workflowsPath }),
    ...setup.options,
    ...(setup.metrics ? { interceptors: { ...setup.options?.interceptors, activity: [...(setup.options?.interceptors?.activity ?? []), setup.metrics.interceptor] } } : {}),
  });
  return { worker, connection };
}
