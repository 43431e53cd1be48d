// The audit trail's activities: recording an event (Update-with-Start of the deployment's writer), the writer's own
// steps (read the head, write one entry everywhere), and the restored VaultPAM's own audit-log entry.
import { ApplicationFailure, Context, activityInfo } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
import { AUDIT_FORMAT, auditEntryHash, auditEventSchema, type AuditEvent, type AuditHead } from '../src/audit/audit-entry';
import { AuditConflictError, readAuditHead, writeAuditEntryEverywhere } from '../src/audit/audit-store';
import type { TargetName } from '../src/config/load';
import type { Dependencies } from '../src/runtime/dependencies';
import { APPEND_UPDATE, auditWorkflowId, type AppendRequest, type AuditLogInput } from '../workflows/audit-log-types';
import { DEPLOYMENT, OPERATION } from '../workflows/search-attributes';

/** How long one run of the writer may last; a run ends by itself as soon as it has nothing queued. */
const WRITER_RUN_TIMEOUT = '2 minutes';

function conflict(err: unknown): never {
  if (err instanceof AuditConflictError) throw ApplicationFailure.create({ type: 'AuditConflict', nonRetryable: true, message: err.message });
  throw err;
}

export function createAuditActivities(deps: Dependencies) {
  return {
    /**
     * Records one event in the deployment's audit trail and answers where it stands ({seq, hash}). The writer is
     * started here when it is not running. Safe to repeat: a retry of this activity carries the same event key, and
     * the writer answers it with the entry written the first time.
     */
    async recordAuditEvent(input: { deployment: string; event: AuditEvent }): Promise<AuditHead> {
      const info = activityInfo();
      const run = info.workflowExecution;
      if (!run) throw new Error('an audit event is recorded only on behalf of a workflow run');
      const event = auditEventSchema.parse(input.event);
      const eventKey = `${run.workflowId}/${run.runId}/${info.activityId}`;
      const client = Context.current().client;
      try {
        return await client.workflow.executeUpdateWithStart<(i: AuditLogInput) => Promise<void>, AuditHead, [AppendRequest]>(APPEND_UPDATE, {
          args: [{ eventKey, event }],
          startWorkflowOperation: new WithStartWorkflowOperation('auditLogWorkflow', {
            workflowId: auditWorkflowId(input.deployment),
            taskQueue: info.taskQueue,
            args: [{ deployment: input.deployment }],
            workflowIdConflictPolicy: 'USE_EXISTING',
            // A writer left on a task queue nobody polls any more (workers moved, a crashed test's queue) must not hold
            // the deployment's trail: its run ends within this, and the next append starts one where the caller runs.
            // Safe at any line: entries are written idempotently and a new run reads the head from the locations.
            workflowRunTimeout: WRITER_RUN_TIMEOUT,
            typedSearchAttributes: [
              { key: DEPLOYMENT, value: input.deployment },
              { key: OPERATION, value: 'audit' },
            ],
            staticSummary: `Audit trail of ${input.deployment}: the one writer of its entries`,
          }),
        });
      } catch (err) {
        // The writer refused for good (another entry where the next goes): no retry can help until an operator looks.
        const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
        if (cause instanceof Error && 'type' in cause && cause.type === 'AuditConflict') {
          throw ApplicationFailure.create({ type: 'AuditConflict', nonRetryable: true, message: cause.message });
        }
        // The writer could not write for now (a location down, the writer starting afresh): this activity's retry asks again.
        if (cause instanceof Error) throw ApplicationFailure.create({ type: 'AuditUnavailable', message: cause.message });
        throw err;
      }
    },

    /** The writer's first step: the newest entry across the locations, after copying entries a location lacks. */
    async readAuditHead(input: { deployment: string }): Promise<{ head: AuditHead; recent: [string, AuditHead][] }> {
      const ctx = Context.current();
      try {
        // The trail may be the first thing a deployment writes (its first backup's "started"): bucket or folder made here.
        for (const location of deps.locations()) await location.ensureReady();
        ctx.heartbeat({ copied: 0 });
        const found = await readAuditHead(deps.locations(), input.deployment, { onProgress: (copied) => ctx.heartbeat({ copied }) });
        return { head: found.head, recent: found.recent };
      } catch (err) {
        conflict(err);
      }
    },

    /** Writes entry `seq` in every location, sealed under the active master key; safe to repeat (see writeAuditEntryEverywhere). */
    async writeAuditEntry(input: { deployment: string; seq: number; prev: string; at: string; eventKey: string; event: AuditEvent }): Promise<AuditHead> {
      const event = auditEventSchema.parse(input.event);
      try {
        const entry = await writeAuditEntryEverywhere(
          deps.locations(),
          { format: AUDIT_FORMAT, seq: input.seq, at: input.at, ...event, deployment: input.deployment, eventKey: input.eventKey, prev: input.prev },
          deps.keyRing(),
        );
        return { seq: entry.seq, hash: auditEntryHash(entry) };
      } catch (err) {
        conflict(err);
      }
    },

    /** Writes a line in the restored VaultPAM's own audit log; the contract makes the same line asked twice one row. */
    async recordVaultpamAuditEvent(input: { target: TargetName; actor: string; action: string; details: Record<string, string | number | boolean | null | string[]> }): Promise<{ id: string }> {
      return deps.controlPlane(input.target).recordAuditEvent({ actor: input.actor, action: input.action, details: input.details }, Context.current().cancellationSignal);
    },
  };
}
