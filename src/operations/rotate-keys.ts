// Master-key rotation from the CLI and the API: starts the rotateKeyWorkflow under the deployment's lock and waits.
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import { assertDeploymentUnlocked } from './deployment-lock';
import { rootCauseMessage } from './failure-message';
import { requireWorker, whileWorkerPolls } from './worker-presence';
import { DEPLOYMENT_LOCKED } from '../../workflows/deployment-lock-types';
import type { RotationResult } from '../../workflows/rotate-key';
import { DEPLOYMENT, OPERATION } from '../../workflows/search-attributes';

export type { RotationResult };

export function rotateKeyWorkflowId(deployment: string): string {
  return `rotate-key-${deployment}`;
}

/** Rewraps every data key of the configured deployment under encryption.activeKeyId; refused while the deployment is locked. */
export async function runKeyRotation(client: Client, config: Config, taskQueue = config.temporal.taskQueue, requestedBy?: string): Promise<RotationResult & { workflowId: string; runId: string }> {
  const deployment = config.deployment.name;
  await assertDeploymentUnlocked(client, deployment);
  await requireWorker(client, taskQueue);
  const workflowId = rotateKeyWorkflowId(deployment);
  let handle;
  try {
    handle = await client.workflow.start('rotateKeyWorkflow', {
      taskQueue,
      workflowId,
      args: [{ deployment, ...(requestedBy ? { requestedBy } : {}) }],
      typedSearchAttributes: [
        { key: DEPLOYMENT, value: deployment },
        { key: OPERATION, value: 'rotate-key' },
      ],
      staticSummary: `Master-key rotation of ${deployment} to ${config.encryption.activeKeyId}`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new VaultpamBackupError('VPB_ERR_DEPLOYMENT_LOCKED', deployment, `a key rotation (${workflowId}) is already running; wait for it`);
    }
    throw err;
  }
  try {
    const result = await whileWorkerPolls(client, taskQueue, handle.result() as Promise<RotationResult>, { workflowId });
    return { workflowId, runId: handle.firstExecutionRunId, ...result };
  } catch (err) {
    if (err instanceof VaultpamBackupError) throw err;
    const cause = (err as { cause?: { type?: string } }).cause;
    if (cause?.type === DEPLOYMENT_LOCKED) throw new VaultpamBackupError('VPB_ERR_DEPLOYMENT_LOCKED', deployment, rootCauseMessage(err));
    throw new VaultpamBackupError('VPB_ERR_STEP_FAILED', 'rotate-key', rootCauseMessage(err));
  }
}
