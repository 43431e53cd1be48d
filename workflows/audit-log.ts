// The one writer of a deployment's audit trail: events queued by the `append` Update are written strictly one at a
// time, each linked to the one before, to every location. A run reads the head from the locations when it starts and
// carries it over continue-as-new; it ends when it has nothing queued, and the next event starts a run on the caller's
// task queue (so no writer is left behind on a queue nobody polls any more).
import { ActivityFailure, ApplicationFailure, allHandlersFinished, condition, continueAsNew, defineQuery, defineUpdate, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { APPEND_UPDATE, HEAD_QUERY, type AppendRequest, type AuditHead, type AuditLogInput } from './audit-log-types';
import { STATUS } from './search-attributes';

export const appendUpdate = defineUpdate<AuditHead, [AppendRequest]>(APPEND_UPDATE);
export const headQuery = defineQuery<AuditHead | undefined>(HEAD_QUERY);

/**
 * Retried a little under a minute: an entry that cannot be written then (a location down) fails this run and its waiting
 * callers, whose own retries start a new run that reads the head again. Nothing is ever skipped.
 */
const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: ['AuditConflict'] };
/** One small entry to every location. */
const storage = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds', retry });
/**
 * The head, after copying what a location lacks (a whole trail, for a location just added): heartbeating, and resumed
 * by the next run if this one's time runs out, since what was copied stays copied.
 */
const headReading = proxyActivities<Activities>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '30 seconds', retry });

/** Entries after which the writer starts afresh (continue-as-new), carrying the head and the latest event keys. */
const ENTRIES_PER_RUN = 300;
/** Event keys remembered across runs: far more than the appends that can be in flight at once. */
const RECENT_KEPT = 200;

export async function auditLogWorkflow(input: AuditLogInput): Promise<void> {
  let head: AuditHead | undefined = input.head;
  const recent = new Map<string, AuditHead>(input.recent ?? []);
  const queue: AppendRequest[] = [];
  let failure: ApplicationFailure | undefined;
  // A run started for an append ends only after serving one (a run carried over continue-as-new counts as served).
  let served = input.head !== undefined;

  setHandler(headQuery, () => head);
  setHandler(appendUpdate, async (request) => {
    served = true;
    const known = recent.get(request.eventKey);
    if (known) return known;
    if (!queue.some((q) => q.eventKey === request.eventKey)) queue.push(request);
    await condition(() => recent.has(request.eventKey) || failure !== undefined);
    const answer = recent.get(request.eventKey);
    if (!answer) throw failure!;
    return answer;
  });

  let written = 0;
  for (;;) {
    await condition(() => queue.length > 0 || (served && allHandlersFinished()));
    if (queue.length === 0) return;
    if (written >= (input.entriesPerRun ?? ENTRIES_PER_RUN) || workflowInfo().continueAsNewSuggested) break;
    const request = queue[0]!;
    if (recent.has(request.eventKey)) {
      // Written already (by an earlier run, before its caller's retry): answered from `recent`, not written again.
      queue.shift();
      continue;
    }
    try {
      if (!head) {
        const found = await headReading.readAuditHead({ deployment: input.deployment });
        head = found.head;
        for (const [key, at] of found.recent) recent.set(key, at);
        continue;
      }
      const next = await storage.writeAuditEntry({ deployment: input.deployment, seq: head.seq + 1, prev: head.hash, at: new Date().toISOString(), eventKey: request.eventKey, event: request.event });
      head = next;
    } catch (err) {
      // Another entry where the next one goes (or locations that disagree on the head): nothing more is written until
      // an operator has looked. Anything else (a location down past the retries): the callers ask again later. Either
      // way every waiting caller is told why, and this run ends.
      const cause = err instanceof ActivityFailure && err.cause ? err.cause : (err as Error);
      const conflict = cause instanceof ApplicationFailure && cause.type === 'AuditConflict';
      failure = ApplicationFailure.create({
        type: conflict ? 'AuditConflict' : 'AuditUnavailable',
        nonRetryable: conflict,
        message: `the audit trail of ${input.deployment} ${conflict ? 'cannot grow' : 'cannot be written now'}: ${cause.message}`,
      });
      await condition(allHandlersFinished);
      throw failure;
    }
    queue.shift();
    recent.set(request.eventKey, head);
    while (recent.size > RECENT_KEPT) recent.delete(recent.keys().next().value!);
    written += 1;
    upsertSearchAttributes([{ key: STATUS, value: `head ${head.seq}` }]);
  }
  // Appends still queued are answered "retry": their callers' activities ask again, and the next run (which keeps the
  // event keys) writes each once.
  failure = ApplicationFailure.create({ type: 'AuditWriterRestarted', message: 'the audit writer started afresh; ask again' });
  await condition(allHandlersFinished);
  await continueAsNew<typeof auditLogWorkflow>({ ...input, ...(head ? { head } : {}), recent: [...recent.entries()] });
}
