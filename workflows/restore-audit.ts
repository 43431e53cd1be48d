// What a restore records in the audit trail (requested, confirmed, its outcome) and, once a full restore has passed its
// smoke test, in the restored VaultPAM's own audit log. Kept apart so the restore workflow calls each in one line.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { auditPrincipal, recordAudit, recordAuditQuietly, type AuditDetails } from './audit-recorder';
import type { RestoreInput, RestoreReport } from './restore-types';

const vaultpamLog = proxyActivities<Pick<Activities, 'recordVaultpamAuditEvent'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
});

/** The principals of the verified approvals, in the order they came (signatures stay out of the trail). */
export function approverIdentities(report: RestoreReport): string[] {
  return (report.approvals ?? []).map((a) => a.principal);
}

/** Who requested: the principal of the verified signed request, else what the (older, unsigned) input claimed. */
function principalOf(input: RestoreInput, report: RestoreReport): string {
  return report.requestedBy ?? auditPrincipal(input.requestedBy);
}

/** Who confirmed: the approvers, else whoever confirmed a restore that needs no approval, else "pre-confirmed". */
function confirmerOf(input: RestoreInput, report: RestoreReport): string {
  const approvers = approverIdentities(report);
  if (approvers.length) return approvers.join(', ');
  return report.confirmedBy ?? (input.confirmed ? 'pre-confirmed' : 'unknown');
}

function subjectOf(input: RestoreInput, report: RestoreReport): { backupId?: string } {
  const backupId = report.backup?.backupId ?? input.backupId;
  return backupId ? { backupId } : {};
}

/** Before anything is read or changed: a restore the trail cannot record does not start. */
export async function auditRestoreRequested(input: RestoreInput, report: RestoreReport): Promise<void> {
  await recordAudit(input.deployment, 'restore.requested', principalOf(input, report), subjectOf(input, report), {
    restoreId: report.restoreId,
    target: report.target,
    scope: report.scope.kind === 'resource' ? `resource ${report.scope.resourceId}` : 'full',
    ...(input.at ? { at: input.at } : {}),
    ...(input.reason ? { reason: input.reason } : {}),
  });
}

/** Once confirmed (or pre-confirmed), before the safety snapshot: who confirmed and who approved. */
export async function auditRestoreConfirmed(input: RestoreInput, report: RestoreReport): Promise<void> {
  const details: AuditDetails = {
    restoreId: report.restoreId,
    requestedBy: principalOf(input, report),
    confirmedBy: confirmerOf(input, report),
    approvals: approverIdentities(report),
    ...(report.breakGlass ? { breakGlass: report.breakGlass.reason } : {}),
    ...(report.lossReportDigest ? { lossReportDigest: report.lossReportDigest } : {}),
    ...(report.acceptedUnrecoverable ? { acceptedUnrecoverable: report.acceptedUnrecoverable } : {}),
  };
  // The confirmation is the approvers' act: they are its principal, the requester is in its details.
  await recordAudit(input.deployment, 'restore.confirmed', confirmerOf(input, report), subjectOf(input, report), details);
}

/**
 * The outcome (completed, rolled back, failed, refused), recorded whatever happens to the recording itself: a failure
 * is written into the report, never undoes a verified restore. A completed full restore also leaves a line in the
 * restored deployment's own audit log.
 */
export async function auditRestoreOutcome(input: RestoreInput, report: RestoreReport): Promise<void> {
  const kind = report.status === 'completed' ? 'restore.completed' : report.status === 'rolled-back' ? 'restore.rolled-back' : report.status === 'refused' ? 'restore.refused' : report.status === 'not-confirmed' ? 'restore.not-confirmed' : 'restore.failed';
  const error = await recordAuditQuietly(input.deployment, kind, principalOf(input, report), subjectOf(input, report), {
    restoreId: report.restoreId,
    target: report.target,
    status: report.status,
    step: report.step,
    ...(report.error ? { error: report.error.slice(0, 500) } : {}),
    ...(report.safetySnapshotId ? { safetySnapshotId: report.safetySnapshotId } : {}),
  });
  report.audit = { trail: error ? { recorded: false, error } : { recorded: true } };
  if (report.status !== 'completed' || report.scope.kind !== 'full' || !report.backup) return;

  const approvers = approverIdentities(report).length ? approverIdentities(report) : [confirmerOf(input, report)];
  const at = new Date().toISOString();
  const actor = 'vaultpam-backup';
  const action = 'backup.restore';
  const details = {
    message: `restored backup ${report.backup.backupId}, requested by ${principalOf(input, report)}, approved by ${approvers.join(', ')}, at ${at}`,
    backupId: report.backup.backupId,
    restoreId: report.restoreId,
    requestedBy: principalOf(input, report),
    approvedBy: approvers,
    at,
  };
  try {
    const recorded = await vaultpamLog.recordVaultpamAuditEvent({ target: report.target, actor, action, details });
    report.audit.vaultpamLog = { recorded: true, id: recorded.id };
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    report.audit.vaultpamLog = { recorded: false, error: cause };
  }
}
