// Starting a backup (one per deployment at a time, whoever asks) and reading its progress; shared by CLI, API and tests.
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { Config } from '../config/schema';
import { targetDeployment, type TargetName } from '../config/load';
import { VaultpamBackupError } from '../errors/catalogue';
import { assertDeploymentUnlocked } from './deployment-lock';
import type { BackupInput, BackupProgress, BackupResult } from '../../workflows/backup-types';
import { DEPLOYMENT, OPERATION } from '../../workflows/search-attributes';

export interface StartBackupOptions {
  target?: TargetName;
  reason?: string;
  requestedBy?: string;
  deep?: boolean;
  tags?: string[];
  taskQueue?: string;
}

/** One workflow id per deployment: Temporal itself refuses a second backup while one runs. */
export function backupWorkflowId(deployment: string): string {
  return `backup-${deployment}`;
}

export async function startBackup(client: Client, config: Config, options: StartBackupOptions = {}): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const target = options.target ?? 'production';
  const deployment = targetDeployment(config, target).name;
  const input: BackupInput = {
    deployment,
    target,
    ...(options.reason ? { reason: options.reason } : {}),
    ...(options.requestedBy ? { requestedBy: options.requestedBy } : {}),
    ...(options.deep ? { deep: true } : {}),
    ...(options.tags ? { tags: options.tags } : {}),
  };
  const workflowId = backupWorkflowId(deployment);
  // A restore or a key rotation holding the lock refuses at once; a backup already running answers below.
  await assertDeploymentUnlocked(client, deployment, { except: workflowId });
  try {
    return await client.workflow.start('backupWorkflow', {
      taskQueue: options.taskQueue ?? config.temporal.taskQueue,
      workflowId,
      args: [input],
      typedSearchAttributes: [
        { key: DEPLOYMENT, value: deployment },
        { key: OPERATION, value: 'backup' },
      ],
      staticSummary: `Backup of ${deployment}${options.reason ? `: ${options.reason}` : ''}`,
      staticDetails: `Requested by ${options.requestedBy ?? 'unknown'}; verify ${options.deep ? 'deep' : 'standard'}; target ${target}.`,
      workflowExecutionTimeout: '24 hours',
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const running = client.workflow.getHandle(workflowId);
      let backupId = 'unknown';
      try {
        const attributes = (await running.describe()).searchAttributes;
        backupId = String(attributes.VaultpamBackupId?.[0] ?? (await client.withDeadline(Date.now() + 2000, () => running.query<BackupProgress>('progress'))).backupId);
      } catch {
        // the running workflow may not answer queries yet (no worker); its id is enough
      }
      throw new VaultpamBackupError('VPB_ERR_BACKUP_RUNNING', deployment, `${workflowId} (backup ${backupId}); wait for it (vaultpam-backup backup status) or cancel it in the Temporal UI`);
    }
    throw err;
  }
}

export async function backupResult(handle: WorkflowHandle): Promise<BackupResult> {
  return (await handle.result()) as BackupResult;
}
