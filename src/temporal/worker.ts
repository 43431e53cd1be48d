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
import { shardTaskQueue } from '../../workflows/task-queues';

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

/**
 * The two pollers of one worker process: the main task queue (workflows and activities) and the shard queue, from
 * which it takes at most `worker.shardsAtOnce` shards of a recordings copy at a time, leaving the rest to other
 * workers. They run, and stop, together.
 */
export class ProjectWorker {
  constructor(
    readonly main: Worker,
    readonly shards: Worker,
  ) {}

  /** Polls both queues until shutdown (or until either fails, which stops the other). */
  async run(): Promise<void> {
    const runs = [this.main.run(), this.shards.run()];
    for (const run of runs) run.catch(() => this.shutdown());
    const [main, shards] = await Promise.allSettled(runs);
    if (main!.status === 'rejected') throw main!.reason;
    if (shards!.status === 'rejected') throw shards!.reason;
  }

  /** Polls both queues while `until` runs, then stops them; its result, or its error. */
  async runUntil<R>(until: Promise<R> | (() => Promise<R>)): Promise<R> {
    const work = typeof until === 'function' ? until() : until;
    // The shard poller stops when the main one does, whether `work` settled or the main poller failed.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let shardFailure: unknown;
    const shards = this.shards.runUntil(released).catch((err: unknown) => {
      // The shard poller failed: the main one stops too, rather than wait on shards nobody takes.
      shardFailure = err;
      if (this.main.getState() === 'RUNNING') this.main.shutdown();
    });
    try {
      return await this.main.runUntil(work);
    } catch (err) {
      throw shardFailure ?? err;
    } finally {
      release();
      await shards;
    }
  }

  shutdown(): void {
    for (const worker of [this.main, this.shards]) if (worker.getState() === 'RUNNING') worker.shutdown();
  }
}

export async function createWorker(setup: WorkerSetup): Promise<{ worker: ProjectWorker; connection: NativeConnection }> {
  const deps = setup.deps ?? createDependencies(setup.config);
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(temporalConnectionOptions(setup.config));
  } catch (err) {
    throw explainConnectFailure(describeTemporalConnection(setup.config), usesTls(setup.config), err);
  }
  const taskQueue = setup.taskQueue ?? setup.config.temporal.taskQueue;
  const activities = createActivities(deps);
  // Crash points (tests only, inert otherwise), the worker's own metrics, and whatever the caller adds.
  const activityInterceptors = [...activityFaultPoints(), ...(setup.metrics ? [setup.metrics.interceptor] : []), ...(setup.options?.interceptors?.activity ?? [])];
  // Heartbeats reach the server at most this often (else 80% of the heartbeat timeout, 24 s by default): the
  // progress a waiting command shows, read from the server, is then a few seconds old at most.
  const maxHeartbeatThrottleInterval = '5 seconds';
  const main = await Worker.create({
    connection,
    namespace: setup.config.temporal.namespace,
    taskQueue,
    activities,
    ...workflowSource(setup.workflowBundlePath),
    maxHeartbeatThrottleInterval,
    ...setup.options,
    interceptors: { ...setup.options?.interceptors, activity: activityInterceptors },
  });
  // The shard queue: activities only, `worker.shardsAtOnce` at a time.
  const shards = await Worker.create({
    connection,
    namespace: setup.config.temporal.namespace,
    taskQueue: shardTaskQueue(taskQueue),
    activities,
    maxHeartbeatThrottleInterval,
    ...(setup.options?.identity ? { identity: setup.options.identity } : {}),
    ...(setup.options?.shutdownGraceTime !== undefined ? { shutdownGraceTime: setup.options.shutdownGraceTime } : {}),
    maxConcurrentActivityTaskExecutions: setup.config.worker.shardsAtOnce,
    interceptors: { activity: activityInterceptors },
  });
  return { worker: new ProjectWorker(main, shards), connection };
}
