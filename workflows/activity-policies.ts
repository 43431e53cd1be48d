// The activity proxies of every workflow, built from the timeouts the worker's configuration sets: quick calls,
// transfers (heartbeating) and undo steps, each with its own policy.
import { patched, proxyActivities, workflowInfo, type ActivityInterfaceFor } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DEFAULT_ACTIVITY_TIMEOUTS, type ActivityTimeouts } from '../src/config/activity-timeouts';
import { shardTaskQueue } from './task-queues';

/** Answered from memory by the worker; retried a while in case no worker of this version polls yet. */
const bootstrap = proxyActivities<Pick<Activities, 'activityTimeouts'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});

/** The worker's configured timeouts; the first thing each workflow asks. */
export async function configuredTimeouts(): Promise<ActivityTimeouts> {
  // A history begun before workflows asked the worker replays with the timeouts it ran with.
  if (!patched('activity-timeouts-from-configuration')) return { ...DEFAULT_ACTIVITY_TIMEOUTS };
  return bootstrap.activityTimeouts();
}

export interface ActivityPolicies {
  timeouts: ActivityTimeouts;
  /** Control-plane calls and bookkeeping: quick, retried a few times. */
  quick: ActivityInterfaceFor<Activities>;
  /** Transfers: long, heartbeating (a lost worker is noticed within the heartbeat timeout and the work resumes). */
  transfer: ActivityInterfaceFor<Activities>;
  /** Undo steps: retried longer, because a rollback that gives up leaves the deployment half restored. */
  undoing: ActivityInterfaceFor<Activities>;
  /** Transfers on the shard queue: each worker takes `worker.shardsAtOnce` of them at a time, other workers the rest. */
  shards: ActivityInterfaceFor<Activities>;
}

export function activityPolicies(timeouts: ActivityTimeouts, nonRetryableErrorTypes: string[]): ActivityPolicies {
  const transferOptions = {
    startToCloseTimeout: timeouts.transferMs,
    heartbeatTimeout: timeouts.heartbeatMs,
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: timeouts.transferAttempts, nonRetryableErrorTypes },
  };
  return {
    timeouts,
    quick: proxyActivities<Activities>({
      startToCloseTimeout: timeouts.quickCallMs,
      retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: timeouts.quickAttempts, nonRetryableErrorTypes },
    }),
    transfer: proxyActivities<Activities>(transferOptions),
    shards: proxyActivities<Activities>({ ...transferOptions, taskQueue: shardTaskQueue(workflowInfo().taskQueue) }),
    undoing: proxyActivities<Activities>({
      startToCloseTimeout: timeouts.transferMs,
      heartbeatTimeout: timeouts.undoHeartbeatMs,
      retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: timeouts.undoAttempts },
    }),
  };
}

/** Asks the worker for its timeouts, then builds the three proxies. */
export async function configuredActivities(nonRetryableErrorTypes: string[]): Promise<ActivityPolicies> {
  return activityPolicies(await configuredTimeouts(), nonRetryableErrorTypes);
}
