// The worker: real clients built once, the activities from their factory, the workflows from the bundle built at build time (or workflows/ in development).
import { existsSync } from 'node:fs';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../../activities';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import { createDependencies, type Dependencies } from '../runtime/dependencies';
import { activityFaultPoints } from './activity-fault-points';
import { prebuiltWorkflowBundlePath, runsCompiled, workflowsSourcePath } from '../runtime/install-layout';
import { explainConnectFailure } from './connect-failure';
import { describeTemporalConnection, temporalConnectionOptions, usesTls } from './connection-options';
import type { ActivityMetrics } from '../metrics/activity-metrics';

export const workflowsPath = workflowsSourcePath;

export interface WorkerSetup {
  config: Config;
  /** Default: built from the configuration. */
  deps?: Dependencies;
  /** Default: config.temporal.taskQueue. */
  taskQueue?: string;
  /**
   * A prebuilt workflow bundle (tests build it once). Default: dist/workflow-bundle.js when running compiled,
   * else workflows/ bundled at start.
   */
  workflowBundlePath?: string;
  options?: Partial<WorkerOptions>;
  /** Activity metrics to record into (the worker command serves them on worker.metricsPort). */
  metrics?: ActivityMetrics;
}

/** The workflow code to load: a bundle made beforehand saves the worker webpack's time and about 120 MiB of memory. */
export function workflowSource(workflowBundlePath?: string): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  if (workflowBundlePath) return { workflowBundle: { codePath: workflowBundlePath } };
  // Sources run in development, where dist/ may hold an older build: only the compiled worker trusts the bundle.
  if (runsCompiled && existsSync(prebuiltWorkflowBundlePath)) return { workflowBundle: { codePath: prebuiltWorkflowBundlePath } };
  if (existsSync(workflowsSourcePath)) return { workflowsPath: workflowsSourcePath };
  throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `no workflow code: neither ${prebuiltWorkflowBundlePath} nor ${workflowsSourcePath} exists; run npm run build`);
}

export async function createWorker(setup: WorkerSetup): Promise<{ worker: Worker; connection: NativeConnection }> {
  const deps = setup.deps ?? createDependencies(setup.config);
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(temporalConnectionOptions(setup.config));
  } catch (err) {
    throw explainConnectFailure(describeTemporalConnection(setup.config), usesTls(setup.config), err);
  }
  const worker = await Worker.create({
    connection,
    namespace: setup.config.temporal.namespace,
    taskQueue: setup.taskQueue ?? setup.config.temporal.taskQueue,
    activities: createActivities(deps),
    ...workflowSource(setup.workflowBundlePath),
    // Heartbeats reach the server at most this often (else 80% of the heartbeat timeout, 24 s by default): the
    // progress a waiting command shows, read from the server, is then a few seconds old at most.
    maxHeartbeatThrottleInterval: '5 seconds',
    ...setup.options,
    // Crash points (tests only, inert otherwise), the worker's own metrics, and whatever the caller adds.
    interceptors: {
      ...setup.options?.interceptors,
      activity: [...activityFaultPoints(), ...(setup.metrics ? [setup.metrics.interceptor] : []), ...(setup.options?.interceptors?.activity ?? [])],
    },
  });
  return { worker, connection };
}
