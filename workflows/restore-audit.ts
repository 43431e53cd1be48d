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

/** The identities of the approvals a report carries, whatever else each approval holds (signatures stay out of the trail). */
export function approverIdentities(report: RestoreReport): string[] {
  const approvals = (report as { approvals?: unknown }).approvals;
  if (!Array.isArray(approvals)) return [];
  return approvals
    .map((a: unknown) => {
      if (typeof a === 'string') return a;
      if (a && typeof a === 'object') {
        const fields = a as Record<string, unknown>;
        const id = ['approvedBy', 'approver', 'by', 'principal', 'identity'].map((k) => fields[k]).find((v) => typeof v === 'string');
        return id as string | undefined;
      }
      return undefined;
    })
    .filter((id): id is string => id !== undefined);
}

function principalOf(input: RestoreInput): string {
  return auditPrincipal(input.requestedBy);
}

function subjectOf(input: RestoreInput, report: RestoreReport): { backupId?: string } {
  const backupId = report.backup?.backupId ?? input.backupId;
  return backupId ? { backupId } : {};
}

/** Before anything is read or changed: a restore the trail cannot record does not start. */
export async function auditRestoreRequested(input: RestoreInput, report: RestoreReport): Promise<void> {
  await recordAudit(input.deployment, 'restore.requested', principalOf(input), subjectOf(input, report), {
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
    confirmedBy: report.confirmedBy ?? (input.confirmed ? 'pre-confirmed' : 'unknown'),
    approvals: approverIdentities(report),
    ...(report.lossReportDigest ? { lossReportDigest: report.lossReportDigest } : {}),
    ...(report.acceptedUnrecoverable ? { acceptedUnrecoverable: report.acceptedUnrecoverable } : {}),
  };
  await recordAudit(input.deployment, 'restore.confirmed', principalOf(input), subjectOf(input, report), details);
}

/**
 * The outcome (completed, rolled back, failed, refused), recorded whatever happens to the recording itself: a failure
 * is written into the report, never undoes a verified restore. A completed full restore also leaves a line in the
 * restored deployment's own audit log.
 */
export async function auditRestoreOutcome(input: RestoreInput, report: RestoreReport): Promise<void> {
  const kind = report.status === 'completed' ? 'restore.completed' : report.status === 'rolled-back' ? 'restore.rolled-back' : report.status === 'refused' ? 'restore.refused' : report.status === 'not-confirmed' ? 'restore.not-confirmed' : 'restore.failed';
  const error = await recordAuditQuietly(input.deployment, kind, principalOf(input), subjectOf(input, report), {
    restoreId: report.restoreId,
    target: report.target,
    status: report.status,
    step: report.step,
    ...(report.error ? { error: report.error.slice(0, 500) } : {}),
    ...(report.safetySnapshotId ? { safetySnapshotId: report.safetySnapshotId } : {}),
  });
  report.audit = { trail: error ? { recorded: false, error } : { recorded: true } };
  if (report.status !== 'completed' || report.scope.kind !== 'full' || !report.backup) return;

  const approvers = [report.confirmedBy ?? (input.confirmed ? 'pre-confirmed' : 'unknown'), ...approverIdentities(report)];
  const at = new Date().toISOString();
  const actor = 'vaultpam-backup';
  const action = 'backup.restore';
  const details = {
    message: `restored backup ${report.backup.backupId}, requested by ${principalOf(input)}, approved by ${approvers.join(', ')}, at ${at}`,
    backupId: report.backup.backupId,
    restoreId: report.restoreId,
    requestedBy: principalOf(input),
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
