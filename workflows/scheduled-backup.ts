// What a Temporal Schedule starts: the backup as a child with the deployment's fixed workflow id, so a scheduled
// run and one asked for by the API or the CLI can never overlap; a run that finds one going, or the deployment's
// lock held by a restore or a key rotation, records why it skipped and ends.
import { ApplicationFailure, ChildWorkflowFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, executeChild, setCurrentDetails, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { backupWorkflow } from './backup';
import type { BackupInput, BackupResult } from './backup-types';
import { DEPLOYMENT_LOCKED, type LockHolder } from './deployment-lock-types';
import { DEPLOYMENT, OPERATION, STATUS } from './search-attributes';

export type ScheduledBackupResult = { started: true; result: BackupResult } | { started: false; reason: string };

export async function scheduledBackupWorkflow(input: BackupInput): Promise<ScheduledBackupResult> {
  const workflowId = `backup-${input.deployment}`;
  try {
    const result = await executeChild(backupWorkflow, {
      workflowId,
      args: [{ ...input, requestedBy: input.requestedBy ?? 'schedule' }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: DEPLOYMENT, value: input.deployment },
        { key: OPERATION, value: 'backup' },
      ],
      staticSummary: `Scheduled backup of ${input.deployment}`,
    });
    return { started: true, result };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return skipped(`skipped: backup workflow ${workflowId} was already running`);
    }
    // Refused by the deployment's lock before it did anything: a restore or a key rotation is running.
    if (err instanceof ChildWorkflowFailure && err.cause instanceof ApplicationFailure && err.cause.type === DEPLOYMENT_LOCKED) {
      const holder = err.cause.details?.[0] as LockHolder | null | undefined;
      return skipped(holder ? `skipped: ${holder.operation} ${holder.workflowId} holds the lock` : `skipped: ${err.cause.message}`);
    }
    throw err;
  }
}

/** A skipped run says why in its result, its details in the Web UI, its status search attribute and its memo. */
function skipped(reason: string): ScheduledBackupResult {
  upsertSearchAttributes([{ key: STATUS, value: 'skipped' }]);
  upsertMemo({ skipped: reason });
  setCurrentDetails(reason);
  return { started: false, reason };
}
