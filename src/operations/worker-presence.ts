// Whether a worker polls a task queue: commands that wait for a workflow refuse, or stop waiting, when none does.
import type { Client } from '@temporalio/client';
import { VaultpamBackupError } from '../errors/catalogue';

/**
 * A live worker long-polls (up to about a minute per poll) and the server records the poll's start, so a poller
 * seen within this window is alive; the server lists a stopped worker for a few minutes more, which is why the
 * age is checked instead of the mere presence in the list.
 */
const LIVE_POLLER_WINDOW_MS = 90_000;

export interface WorkerPresenceOptions {
  /** How long to wait for a poller to show up (a worker that is just starting, on a loaded machine). @default 10000 */
  graceMs?: number;
  /** Between two looks at the task queue. @default 500 */
  intervalMs?: number;
}

function timestampMs(ts: { seconds?: { toNumber(): number } | number | null; nanos?: number | null } | null | undefined): number {
  if (!ts) return 0;
  const seconds = typeof ts.seconds === 'number' ? ts.seconds : (ts.seconds?.toNumber() ?? 0);
  return seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}

/** The identities of the workers that polled the task queue's workflow tasks within the live window. */
export async function livePollers(client: Client, taskQueue: string, liveWindowMs = LIVE_POLLER_WINDOW_MS): Promise<string[]> {
  const response = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    // TASK_QUEUE_KIND_NORMAL and TASK_QUEUE_TYPE_WORKFLOW (the proto enums' values; every worker polls workflow tasks).
    taskQueue: { name: taskQueue, kind: 1 },
    taskQueueType: 1,
  });
  const now = Date.now();
  return (response.pollers ?? []).filter((p) => now - timestampMs(p.lastAccessTime) <= liveWindowMs).map((p) => p.identity ?? 'unknown');
}

function noWorker(client: Client, taskQueue: string, what: string): VaultpamBackupError {
  return new VaultpamBackupError(
    'VPB_ERR_NO_WORKER',
    taskQueue,
    client.options.namespace,
    `${what}. Start one with the same configuration (temporal.address, temporal.namespace, temporal.taskQueue): vaultpam-backup worker`,
  );
}

/** Resolves once a live worker polls `taskQueue`; refuses (VPB_ERR_NO_WORKER) after the grace period otherwise. */
export async function requireWorker(client: Client, taskQueue: string, options: WorkerPresenceOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.graceMs ?? 10_000);
  for (;;) {
    if ((await livePollers(client, taskQueue)).length > 0) return;
    if (Date.now() >= deadline) throw noWorker(client, taskQueue, 'nothing was started, since nothing would run it');
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
  }
}

export interface WatchOptions {
  /** Between two looks while waiting. @default 15000 */
  checkEveryMs?: number;
  /** The workflow being waited for, named in the message. */
  workflowId?: string;
  /** A poller seen this recently is alive. @default 90000 (longer than a long poll) */
  liveWindowMs?: number;
}

/**
 * Waits for `work` while checking that a worker still polls `taskQueue`; when none has for the live window, stops
 * waiting with VPB_ERR_NO_WORKER (the workflow stays in Temporal and goes on once a worker runs).
 */
export async function whileWorkerPolls<T>(client: Client, taskQueue: string, work: Promise<T>, options: WatchOptions = {}): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const watch = new Promise<never>((_resolve, reject) => {
    const look = async () => {
      if (stopped) return;
      try {
        if ((await livePollers(client, taskQueue, options.liveWindowMs)).length === 0) {
          const waiting = options.workflowId ? `workflow ${options.workflowId} waits for one (it goes on once a worker runs)` : 'the operation waits for one';
          reject(noWorker(client, taskQueue, waiting));
          return;
        }
      } catch {
        // a describe that fails once is tried again on the next look; the work itself reports a lost server
      }
      if (!stopped) timer = setTimeout(() => void look(), options.checkEveryMs ?? 15_000);
    };
    timer = setTimeout(() => void look(), options.checkEveryMs ?? 15_000);
  });
  try {
    return await Promise.race([work, watch]);
  } finally {
    stopped = true;
    if (timer) clearTimeout(timer);
  }
}
