// Starting a restore, reading its report, confirming it (shared by the CLI, the API and the tests).
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowExecutionDescription, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { statementSigner } from '../approvals/approval-keys';
import type { Principal } from '../auth/principal';
import type { Config } from '../config/schema';
import { targetDeployment, type TargetName } from '../config/load';
import { VaultpamBackupError } from '../errors/catalogue';
import { assertDeploymentUnlocked } from './deployment-lock';
import { rootCauseMessage } from './failure-message';
import type { ConfirmArgs, RestoreInput, RestoreReport, RestoreScope } from '../../workflows/restore-types';
import type { DrillReport } from '../../workflows/restore-drill';
import { DEPLOYMENT, OPERATION } from '../../workflows/search-attributes';

export interface StartRestoreOptions {
  backupId?: string;
  at?: string;
  scope?: RestoreScope;
  target?: TargetName;
  reason?: string;
  /** Who asks: signed into the restore's request (the report's requestedBy comes from the signature only). */
  principal: Principal;
  /** Pre-confirmed (--yes): only targets that need no approval (staging) accept it. */
  confirmed?: boolean;
  confirmTimeout?: string;
  /** Back up the target first. @default true for production */
  safetySnapshot?: boolean;
  /** With confirmed: accept the loss of the recordings found in no location (their digest, or at most this many). */
  acceptUnrecoverable?: string | number;
  taskQueue?: string;
}

/** Parses --accept-unrecoverable: the 64-hex digest of the list of recordings found nowhere, or a count. */
export function parseUnrecoverableAcceptance(text: string | undefined): string | number | undefined {
  if (text === undefined) return undefined;
  if (/^[0-9a-f]{64}$/.test(text)) return text;
  if (/^\d{1,9}$/.test(text)) return Number(text);
  throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `--accept-unrecoverable "${text}" is neither the 64-hex digest from the restore report nor a count`);
}

/** Parses `full` or `resource:<id>` (the CLI's --scope). */
export function parseScope(text: string | undefined): RestoreScope {
  if (text === undefined || text === 'full') return { kind: 'full' };
  const m = /^resource:([A-Za-z0-9_-]{1,128})$/.exec(text);
  if (!m) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `scope "${text}" is neither "full" nor "resource:<id>"`);
  return { kind: 'resource', resourceId: m[1]! };
}

export function restoreWorkflowId(targetDeploymentName: string): string {
  return `restore-${targetDeploymentName}`;
}

export async function startRestore(client: Client, config: Config, options: StartRestoreOptions): Promise<WorkflowHandleWithFirstExecutionRunId> {
  if (!options.backupId === !options.at) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', 'give either --backup <id> or --at <time>, not both');
  }
  if (options.at && Number.isNaN(new Date(options.at).getTime())) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `--at "${options.at}" is not a time: use ISO 8601, e.g. 2026-11-27T02:00:00Z`);
  }
  const target = options.target ?? 'production';
  const into = targetDeployment(config, target).name;
  const input: RestoreInput = {
    deployment: config.deployment.name,
    target,
    targetDeployment: into,
    ...(options.backupId ? { backupId: options.backupId } : {}),
    ...(options.at ? { at: new Date(options.at).toISOString() } : {}),
    scope: options.scope ?? { kind: 'full' },
    ...(options.reason ? { reason: options.reason } : {}),
    requestedBy: options.principal.id,
    confirmed: options.confirmed ?? false,
    ...(options.confirmTimeout ? { confirmTimeout: options.confirmTimeout } : {}),
    ...(options.safetySnapshot !== undefined ? { safetySnapshot: options.safetySnapshot } : {}),
    ...(options.acceptUnrecoverable !== undefined ? { acceptUnrecoverable: options.acceptUnrecoverable } : {}),
  };
  const workflowId = restoreWorkflowId(into);
  // The request, signed as the principal: the workflow verifies it, and refuses a target that needs approvals without
  // it (a process without approvals.signingKey can still start restores of targets that need none).
  if (config.approvals.signingKey) input.request = statementSigner(config.approvals).sign({
    kind: 'restore-request',
    workflowId,
    deployment: input.deployment,
    target,
    scope: input.scope!,
    ...(input.backupId ? { backupId: input.backupId } : {}),
    ...(input.at ? { at: input.at } : {}),
    principal: options.principal.id,
    issuedAt: new Date().toISOString(),
  });
  // A backup or key rotation of the target holding its lock refuses at once; a restore already running answers below.
  await assertDeploymentUnlocked(client, into, { except: workflowId });
  try {
    return await client.workflow.start('restoreWorkflow', {
      taskQueue: options.taskQueue ?? config.temporal.taskQueue,
      workflowId,
      args: [input],
      typedSearchAttributes: [
        { key: DEPLOYMENT, value: into },
        { key: OPERATION, value: 'restore' },
      ],
      staticSummary: `Restore of ${into} from ${options.backupId ?? `the deployment as of ${options.at}`} (${input.scope!.kind === 'full' ? 'full' : `resource ${(input.scope as { resourceId: string }).resourceId}`})`,
      staticDetails: `Requested by ${options.principal.id}: ${options.reason ?? 'no reason given'}`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `a restore of ${into} is already running: workflow ${workflowId}; see it with: vaultpam-backup restore report ${workflowId}`);
    }
    throw err;
  }
}

/** The workflow ids this project starts: letters, digits and `._:-`; anything else is refused before Temporal is asked. */
const WORKFLOW_ID_SHAPE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/;

/**
 * Describes a restore workflow: VPB_ERR_INPUT_INVALID for an id of the wrong shape, VPB_ERR_NOT_FOUND for one
 * that names no workflow or a workflow that is not a restore (a backup's result is not a restore's report).
 */
export async function describeRestore(client: Client, workflowId: string): Promise<WorkflowExecutionDescription> {
  if (!WORKFLOW_ID_SHAPE.test(workflowId)) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `"${workflowId.slice(0, 80)}" is not a workflow id (letters, digits and ._:- only, e.g. restore-prod-eu)`);
  }
  let description: WorkflowExecutionDescription;
  try {
    description = await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new VaultpamBackupError('VPB_ERR_NOT_FOUND', `restore ${workflowId}`, `no workflow has this id in namespace ${client.options.namespace}; a restore's id is restore-<deployment>`);
    throw err;
  }
  if (description.type !== 'restoreWorkflow') {
    throw new VaultpamBackupError('VPB_ERR_NOT_FOUND', `restore ${workflowId}`, `workflow ${workflowId} is a ${description.type}, not a restore`);
  }
  return description;
}

/** The report of a running restore (query) or of a finished one (its result, or the report its failure carries). */
export async function restoreReport(client: Client, workflowId: string): Promise<RestoreReport> {
  const description = await describeRestore(client, workflowId);
  const handle = client.workflow.getHandle(workflowId, description.runId);
  if (description.status.name === 'RUNNING') {
    return client.withDeadline(Date.now() + 5000, () => handle.query<RestoreReport>('report'));
  }
  try {
    return (await handle.result()) as RestoreReport;
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const details = (err.cause as { details?: unknown[] } | undefined)?.details;
      const report = details?.[0] as RestoreReport | undefined;
      if (report) return report;
      throw new VaultpamBackupError('VPB_ERR_STEP_FAILED', 'restore', rootCauseMessage(err));
    }
    throw err;
  }
}

export interface ConfirmRestoreOptions {
  backupId: string;
  lossReportDigest: string;
  acceptUnrecoverable?: ConfirmArgs['acceptUnrecoverable'];
  /** Who approves: signed into the approval; never the principal who requested the restore. */
  principal: Principal;
  /** One approval standing for all required ones (restore.breakGlass.enabled on the worker); said loudly everywhere. */
  breakGlass?: { reason: string };
  /** Appended to the refusal of an approval by the requester: how this caller approves as someone else. */
  selfApprovalHint?: string;
}

/**
 * Approves and confirms a restore with a signed approval: the workflow accepts only the backup id it resolved, the
 * digest of its current loss report, and an approval that verifies, by a principal other than the requester.
 */
export async function confirmRestore(client: Client, config: Config, workflowId: string, options: ConfirmRestoreOptions): Promise<RestoreReport> {
  const description = await describeRestore(client, workflowId);
  if (description.status.name !== 'RUNNING') {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `restore ${workflowId} has ended (${description.status.name.toLowerCase()}); there is nothing to confirm: start a new one`);
  }
  // The approval is bound to this run of the restore: its restoreId comes from the report.
  const current = await client.withDeadline(Date.now() + 5000, () => client.workflow.getHandle(workflowId, description.runId).query<RestoreReport>('report'));
  // Without approvals.signingKey only a target that needs no approval accepts the confirmation (the workflow says so).
  const args: ConfirmArgs = {
    backupId: options.backupId,
    lossReportDigest: options.lossReportDigest,
    ...(options.acceptUnrecoverable !== undefined ? { acceptUnrecoverable: options.acceptUnrecoverable } : {}),
  };
  if (config.approvals.signingKey || options.breakGlass) {
    args.approval = statementSigner(config.approvals).sign({
      kind: 'restore-approval',
      workflowId,
      restoreId: current.restoreId,
      backupId: options.backupId,
      lossReportDigest: options.lossReportDigest,
      principal: options.principal.id,
      issuedAt: new Date().toISOString(),
      ...(options.breakGlass ? { breakGlass: options.breakGlass } : {}),
    });
  }
  try {
    return await client.workflow.getHandle(workflowId).executeUpdate<RestoreReport, [ConfirmArgs]>('confirm', { args: [args] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const reason = rootCauseMessage(err);
      const hint = options.selfApprovalHint && /approved by the principal who requested it/.test(reason) ? `. ${options.selfApprovalHint}` : '';
      throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `confirmation refused: ${reason}${hint}`);
    }
    throw err;
  }
}

export async function startDrill(client: Client, config: Config, taskQueue = config.temporal.taskQueue) {
  const staging = targetDeployment(config, 'staging').name;
  return client.workflow.start('restoreDrillWorkflow', {
    taskQueue,
    workflowId: `restore-drill-${staging}-${Date.now().toString(36)}`,
    args: [{ deployment: config.deployment.name, stagingDeployment: staging }],
    typedSearchAttributes: [
      { key: DEPLOYMENT, value: staging },
      { key: OPERATION, value: 'restore-drill' },
    ],
    staticSummary: `Restore drill of ${config.deployment.name} into ${staging}`,
  });
}

export type { DrillReport };
