// What a Temporal Schedule starts: the backup as a child with the deployment's fixed workflow id, so a scheduled
// run and one asked for by the API or the CLI can never overlap; a run that finds one going says so and ends.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, executeChild } from '@temporalio/workflow';
import { backupWorkflow } from './backup';
import type { BackupInput, BackupResult } from './backup-types';
import { DEPLOYMENT, OPERATION } from './search-attributes';

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
      return { started: false, reason: `backup workflow ${workflowId} was already running; this scheduled run was skipped` };
    }
    throw err;
  }
}
