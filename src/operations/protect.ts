// Starting, stopping and reading the point-in-time protection workflow of a deployment (`protect-<deployment>`).
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { TargetName } from '../config/load';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import { pointInTimeWindow, type PointInTimeWindow } from '../catalog/point-in-time-window';
import type { BackupLocation } from '../storage';
import type { KeyRing } from '../crypto';
import { PROTECTION_MARKS_QUERY, STOP_PROTECTION_SIGNAL, protectWorkflowId, type ProtectInput, type ProtectionState } from '../../workflows/protect-types';

function deploymentOf(config: Config, target: TargetName) {
  const deployment = target === 'staging' ? config.staging : config.deployment;
  if (!deployment) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', 'no staging deployment is configured: add "staging" to the configuration');
  return deployment;
}

/** Starts the protection workflow; one per deployment (its workflow id says which), so a second start is refused. */
export async function startProtection(client: Client, config: Config, target: TargetName = 'production'): Promise<string> {
  const deployment = deploymentOf(config, target);
  if (!deployment.pointInTime?.enabled) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `point-in-time protection is not enabled for ${deployment.name}: set deployment.pointInTime.enabled to true`);
  }
  const workflowId = protectWorkflowId(deployment.name);
  const input: ProtectInput = { target, deployment: deployment.name, baseBackupEveryHours: deployment.pointInTime.baseBackupEveryHours };
  try {
    await client.workflow.start('protectWorkflow', { taskQueue: config.temporal.taskQueue, workflowId, args: [input], staticSummary: `Point-in-time protection of ${deployment.name}` });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `protection of ${deployment.name} already runs (workflow ${workflowId}); stop it first to restart it`);
    throw err;
  }
  return workflowId;
}

/** Asks the workflow to stop after its current slice; the replication slot stays, so a later start resumes without a gap. */
export async function stopProtection(client: Client, config: Config, target: TargetName = 'production'): Promise<string> {
  const workflowId = protectWorkflowId(deploymentOf(config, target).name);
  await client.workflow.getHandle(workflowId).signal(STOP_PROTECTION_SIGNAL);
  return workflowId;
}

export interface ProtectionStatus {
  workflowId: string;
  running: boolean;
  state?: ProtectionState;
  /** An activity of the workflow being retried, and why (a stream whose slot the server invalidated says so here). */
  retrying?: { activity: string; attempt: number; error: string };
  window: Omit<PointInTimeWindow, 'holdings'>;
}

/** The workflow's marks (when it runs) and the covered window read from the locations. */
export async function protectionStatus(client: Client, config: Config, locations: readonly BackupLocation[], keyRing: KeyRing, target: TargetName = 'production'): Promise<ProtectionStatus> {
  const deployment = deploymentOf(config, target);
  const workflowId = protectWorkflowId(deployment.name);
  const handle = client.workflow.getHandle(workflowId);
  let running = false;
  let state: ProtectionState | undefined;
  let retrying: ProtectionStatus['retrying'];
  try {
    const description = await handle.describe();
    running = description.status.name === 'RUNNING';
    if (running) state = await handle.query<ProtectionState>(PROTECTION_MARKS_QUERY);
    const failing = (description.raw.pendingActivities ?? []).find((p) => (p.attempt ?? 1) > 1 && p.lastFailure?.message);
    if (running && failing) retrying = { activity: failing.activityType?.name ?? '?', attempt: failing.attempt ?? 2, error: failing.lastFailure!.message! };
  } catch {
    running = false;
  }
  const { holdings: _holdings, ...window } = await pointInTimeWindow(locations, deployment.name, keyRing);
  return { workflowId, running, ...(state ? { state } : {}), ...(retrying ? { retrying } : {}), window };
}
