// Announces a restore that needs approval, or was approved by break-glass: the webhook, and for break-glass a warning log.
import { Context } from '@temporalio/activity';
import { postWebhook, type WebhookDelivery } from '../src/notifications/webhook';
import type { Dependencies } from '../src/runtime/dependencies';

export interface RestoreEvent {
  event: 'restore.awaiting-approval' | 'restore.break-glass';
  workflowId: string;
  deployment: string;
  target: 'production' | 'staging';
  backupId: string;
  requestedBy?: string;
  approvalsRequired: number;
  lossReportDigest: string;
  /** The command an approver runs. */
  confirm: string;
  /** Break-glass only. */
  approvedBy?: string;
  reason?: string;
}

export interface NotificationResult {
  event: RestoreEvent['event'];
  /** Whether a webhook is configured on this worker. */
  configured: boolean;
  delivered: boolean;
  attempts: number;
  error?: string;
}

export function createRestoreNotificationActivities(deps: Dependencies) {
  async function notify(event: RestoreEvent): Promise<NotificationResult> {
    const webhook = deps.config.notifications.webhook;
    if (!webhook) return { event: event.event, configured: false, delivered: false, attempts: 0 };
    const ctx = Context.current();
    let delivery: WebhookDelivery;
    try {
      const secret = webhook.secret ? deps.secret(webhook.secret) : undefined;
      delivery = await postWebhook(event, {
        url: webhook.url,
        ...(secret ? { secret } : {}),
        onFailedAttempt: (attempt, error) => {
          ctx.heartbeat({ attempt });
          ctx.log.warn('the restore webhook did not take the event', { event: event.event, attempt, error });
        },
      });
    } catch (err) {
      // A secret that cannot be resolved is reported like an unreachable webhook: the restore goes on.
      delivery = { delivered: false, attempts: 0, error: (err as Error).message };
    }
    return { event: event.event, configured: true, ...delivery };
  }

  return {
    /** Never fails: the outcome goes into the restore's report. */
    async notifyRestore(event: RestoreEvent): Promise<NotificationResult> {
      return notify(event);
    },
    /** Loud on purpose: a warning in the worker's log, the webhook, and (BREAK_GLASS_ACTIVITY) the break-glass counter. */
    async announceBreakGlass(event: RestoreEvent): Promise<NotificationResult> {
      Context.current().log.warn('BREAK-GLASS restore approval: one approval stands for all required ones', {
        workflowId: event.workflowId,
        deployment: event.deployment,
        target: event.target,
        backupId: event.backupId,
        requestedBy: event.requestedBy,
        approvedBy: event.approvedBy,
        reason: event.reason,
      });
      return notify(event);
    },
  };
}
