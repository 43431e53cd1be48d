// The deployment lock as callers see it before starting an operation: who holds it, read from the lock workflow's
// memo (no worker needed), so a refusal is immediate and names the holder. The lock workflow stays the arbiter.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { VaultpamBackupError } from '../errors/catalogue';
import { HOLDER_MEMO, lockWorkflowId, lockedMessage, type LockHolder } from '../../workflows/deployment-lock-types';

/** The holder of a deployment's lock whose run is still running; undefined when the lock is free. */
export async function deploymentLockHolder(client: Client, deployment: string): Promise<LockHolder | undefined> {
  let holder: LockHolder | null | undefined;
  try {
    const description = await client.workflow.getHandle(lockWorkflowId(deployment)).describe();
    if (description.status.name !== 'RUNNING') return undefined;
    holder = description.memo?.[HOLDER_MEMO] as LockHolder | null | undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
  if (!holder) return undefined;
  try {
    const run = await client.workflow.getHandle(holder.workflowId, holder.runId).describe();
    return run.status.name === 'RUNNING' ? holder : undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/** Refuses (VPB_ERR_DEPLOYMENT_LOCKED, HTTP 409) when a running operation other than `except` holds the lock. */
export async function assertDeploymentUnlocked(client: Client, deployment: string, options: { except?: string } = {}): Promise<void> {
  const holder = await deploymentLockHolder(client, deployment);
  if (holder && holder.workflowId !== options.except) {
    throw new VaultpamBackupError('VPB_ERR_DEPLOYMENT_LOCKED', deployment, lockedMessage(deployment, holder));
  }
}
