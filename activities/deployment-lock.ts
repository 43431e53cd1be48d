// The deployment lock's client side, run by the workflows that take it: acquire (Update-with-Start of the lock
// workflow), release (a signal), and the liveness check the lock workflow makes of a holder.
import { Context, activityInfo } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import type { Dependencies } from '../src/runtime/dependencies';
import { ACQUIRE_UPDATE, RELEASE_SIGNAL, lockWorkflowId, type AcquireAnswer, type AcquireRequest, type LockOperation, type ReleaseRequest } from '../workflows/deployment-lock-types';
import { DEPLOYMENT, OPERATION } from '../workflows/search-attributes';

/** The workflow run an activity works for: the lock's and a pin's holder is always a workflow run, never a caller's claim. */
export function callingRun(): { workflowId: string; runId: string } {
  const run = activityInfo().workflowExecution;
  if (!run) throw new Error('this activity runs only on behalf of a workflow');
  return { workflowId: run.workflowId, runId: run.runId };
}

export function createDeploymentLockActivities(_deps: Dependencies) {
  return {
    /**
     * Asks the deployment's lock workflow (started here when it is not running) for the lock, for the calling
     * workflow run, or with mode `confirm` for `holder` (the parent the caller runs under). Safe to repeat: the
     * holder asking again is answered "acquired".
     */
    async acquireDeploymentLock(input: { deployment: string; operation: LockOperation; mode: AcquireRequest['mode']; holder?: ReleaseRequest }): Promise<AcquireAnswer> {
      const info = activityInfo();
      const holder = input.holder ?? callingRun();
      const client = Context.current().client;
      return client.workflow.executeUpdateWithStart<(i: { deployment: string }) => Promise<void>, AcquireAnswer, [AcquireRequest]>(ACQUIRE_UPDATE, {
        args: [{ ...holder, operation: input.operation, mode: input.mode }],
        startWorkflowOperation: new WithStartWorkflowOperation('deploymentLockWorkflow', {
          workflowId: lockWorkflowId(input.deployment),
          taskQueue: info.taskQueue,
          args: [{ deployment: input.deployment }],
          workflowIdConflictPolicy: 'USE_EXISTING',
          typedSearchAttributes: [
            { key: DEPLOYMENT, value: input.deployment },
            { key: OPERATION, value: 'lock' },
          ],
          staticSummary: `Lock of ${input.deployment}: backup, restore and key rotation exclude one another`,
        }),
      });
    },

    /** Releases the calling run's lock; a lock held by anyone else, or no lock workflow at all, is left as it is. */
    async releaseDeploymentLock(input: { deployment: string }): Promise<void> {
      const { workflowId, runId } = callingRun();
      try {
        await Context.current().client.workflow.getHandle(lockWorkflowId(input.deployment)).signal<[ReleaseRequest]>(RELEASE_SIGNAL, { workflowId, runId });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    },

    /** Whether a lock holder's run is still running (asked by the lock workflow when someone else wants the lock). */
    async describeLockHolder(input: ReleaseRequest): Promise<{ running: boolean; status: string }> {
      try {
        const description = await Context.current().client.workflow.getHandle(input.workflowId, input.runId).describe();
        return { running: description.status.name === 'RUNNING', status: description.status.name };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { running: false, status: 'NOT_FOUND' };
        throw err;
      }
    },
  };
}
