// The workflows' side of the audit trail: one call records an event through the deployment's writer and answers where
// the trail stands; retried long, because a backup must not commit without its entry.
import { CancellationScope, log, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AuditEvent, AuditHead } from './audit-log-types';

const auditCalls = proxyActivities<Pick<Activities, 'recordAuditEvent'>>({
  // An append waits for the entry to reach every location; past this the writer is stuck (a queue nobody polls, whose
  // run times out) and a retry reaches a new one.
  startToCloseTimeout: '90 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: ['AuditConflict'] },
});

export type AuditKind = AuditEvent['kind'];
export type AuditDetails = NonNullable<AuditEvent['details']>;

/** Who an audit entry names: whoever asked for the run, `schedule` for scheduled runs. */
export function auditPrincipal(requestedBy: string | undefined, scheduled = false): string {
  return requestedBy ?? (scheduled ? 'schedule' : 'unknown');
}

/**
 * Records an event in `deployment`'s audit trail; throws when it could not be recorded (the caller decides whether
 * that stops it). Runs even while the workflow is being cancelled: a cancelled run's events are recorded too.
 */
export async function recordAudit(deployment: string, kind: AuditKind, principal: string, subject: { backupId?: string }, details: AuditDetails = {}): Promise<AuditHead | undefined> {
  // A run begun before the audit trail existed replays without it.
  if (!patched('audit-trail')) return undefined;
  const event: AuditEvent = { kind, principal, subject: { ...subject, workflowId: workflowInfo().workflowId }, details };
  return CancellationScope.nonCancellable(() => auditCalls.recordAuditEvent({ deployment, event }));
}

/** Records an event whose loss must not undo what it describes (a completed restore): a failure is logged and returned. */
export async function recordAuditQuietly(deployment: string, kind: AuditKind, principal: string, subject: { backupId?: string }, details: AuditDetails = {}): Promise<string | undefined> {
  try {
    await recordAudit(deployment, kind, principal, subject, details);
    return undefined;
  } catch (err) {
    const message = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    log.error('an audit event could not be recorded', { kind, error: message });
    return message;
  }
}
