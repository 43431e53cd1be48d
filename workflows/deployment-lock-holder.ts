// The holder's side of the deployment lock, for the workflows that take it: taken before anything is read or
// changed, released in a non-cancellable finally.
import { ApplicationFailure, CancellationScope, log, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DEPLOYMENT_LOCKED, lockedMessage, type LockOperation } from './deployment-lock-types';
import { STATUS } from './search-attributes';

const lockCalls = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 10 },
});

/**
 * `own`: the calling run takes the lock. `parent`: the caller runs under the lock its parent holds (a restore's
 * safety snapshot); it only checks that the parent has it. Refused: an ApplicationFailure of type DeploymentLocked
 * whose message names the holder.
 */
export async function takeDeploymentLock(deployment: string, operation: LockOperation, whose: 'own' | 'parent' = 'own'): Promise<void> {
  const parent = workflowInfo().parent;
  if (whose === 'parent' && !parent) {
    throw ApplicationFailure.create({ type: DEPLOYMENT_LOCKED, nonRetryable: true, message: `this ${operation} was asked to run under its parent's lock of ${deployment}, but it has no parent workflow` });
  }
  const answer = await lockCalls.acquireDeploymentLock({
    deployment,
    operation,
    mode: whose === 'own' ? 'acquire' : 'confirm',
    ...(whose === 'parent' && parent ? { holder: { workflowId: parent.workflowId, runId: parent.runId } } : {}),
  });
  if (!answer.acquired) {
    throw ApplicationFailure.create({ type: DEPLOYMENT_LOCKED, nonRetryable: true, message: lockedMessage(deployment, answer.holder), details: [answer.holder ?? null] });
  }
}

/** Releases the calling run's lock even while the workflow is being cancelled; a failure is logged, not thrown. */
export async function releaseDeploymentLock(deployment: string): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    try {
      await lockCalls.releaseDeploymentLock({ deployment });
    } catch (err) {
      log.error('the deployment lock could not be released; the next taker finds its holder ended and takes it', { error: (err as Error).message });
    }
  });
}

/**
 * Runs `steps` holding the deployment's lock (`own`), or under the parent's (`parent`); a refusal marks the run
 * `refused` in its search attributes before it is thrown.
 */
export async function underDeploymentLock<T>(deployment: string, operation: LockOperation, whose: 'own' | 'parent', steps: () => Promise<T>): Promise<T> {
  try {
    await takeDeploymentLock(deployment, operation, whose);
  } catch (err) {
    upsertSearchAttributes([{ key: STATUS, value: 'refused' }]);
    throw err;
  }
  try {
    return await steps();
  } finally {
    if (whose === 'own') await releaseDeploymentLock(deployment);
  }
}
