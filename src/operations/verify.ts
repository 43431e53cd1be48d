// Runs the verify workflow for one committed backup and waits for its report.
import type { Client } from '@temporalio/client';
import { activityTimeoutsOf } from '../config/activity-timeouts';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import { rootCauseMessage } from './failure-message';
import { requireWorker, whileWorkerPolls } from './worker-presence';
import type { VerifyReport } from '../../workflows/verify';
import { BACKUP_ID, DEPLOYMENT, OPERATION } from '../../workflows/search-attributes';

const BACKUP_ID_SHAPE = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$/;

/** The report, with the ids of the run that made it. */
export type VerifyRun = VerifyReport & { workflowId: string; runId: string };

export interface VerifyRunOptions {
  /** Called once the workflow is started, before waiting for it (the command line follows its progress). */
  onStarted?(workflowId: string): void | Promise<void>;
  /** Who asked (from the caller's credential): the audit trail's principal. */
  requestedBy?: string;
}

export async function runVerify(client: Client, config: Config, backupId: string, deep: boolean, taskQueue = config.temporal.taskQueue, options: VerifyRunOptions = {}): Promise<VerifyRun> {
  if (!BACKUP_ID_SHAPE.test(backupId)) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `"${backupId}" is not a backup id (like 20261127T020000Z-1a2b3c); list them with: vaultpam-backup backups list`);
  }
  const deployment = config.deployment.name;
  await requireWorker(client, taskQueue);
  const handle = await client.workflow.start('verifyWorkflow', {
    taskQueue,
    workflowId: `verify-${deployment}-${backupId}-${Date.now().toString(36)}`,
    args: [{ deployment, backupId, deep, ...(options.requestedBy ? { requestedBy: options.requestedBy } : {}) }],
    typedSearchAttributes: [
      { key: DEPLOYMENT, value: deployment },
      { key: OPERATION, value: 'verify' },
      { key: BACKUP_ID, value: backupId },
    ],
    staticSummary: `Verify backup ${backupId} of ${deployment}${deep ? ' (deep)' : ''}`,
  });
  const ids = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
  await options.onStarted?.(handle.workflowId);
  let report: VerifyReport;
  try {
    report = await whileWorkerPolls(client, taskQueue, handle.result() as Promise<VerifyReport>, { workflowId: handle.workflowId });
  } catch (err) {
    if (err instanceof VaultpamBackupError) throw err;
    throw new VaultpamBackupError('VPB_ERR_STEP_FAILED', 'verify', rootCauseMessage(err, activityTimeoutsOf(config.timeouts)));
  }
  return { ...ids, ...report };
}
