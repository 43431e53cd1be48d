// One lock per deployment: backup, restore and key rotation exclude one another. A workflow holds the state while
// the lock is held, so it survives crashes of workers and of the server; a holder that ended without releasing is
// noticed (described through an activity) when someone else asks, so it cannot hold the lock forever.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  log,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ACQUIRE_UPDATE, HOLDER_MEMO, HOLDER_QUERY, RELEASE_SIGNAL, type AcquireAnswer, type AcquireRequest, type LockHolder, type ReleaseRequest } from './deployment-lock-types';
import { STATUS } from './search-attributes';

export const acquireUpdate = defineUpdate<AcquireAnswer, [AcquireRequest]>(ACQUIRE_UPDATE);
export const releaseSignal = defineSignal<[ReleaseRequest]>(RELEASE_SIGNAL);
export const holderQuery = defineQuery<LockHolder | undefined>(HOLDER_QUERY);

const quick = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 5 },
});

/** Events after which the lock starts afresh (continue-as-new), carrying only its holder. */
const HISTORY_LIMIT = 2_000;

export async function deploymentLockWorkflow(input: { deployment: string; holder?: LockHolder }): Promise<void> {
  let holder = input.holder;
  let deciding = false;
  // A run started for a request ends only after serving one (a carried-over holder counts as served).
  let served = input.holder !== undefined;
  const publish = () => {
    upsertMemo({ [HOLDER_MEMO]: holder ?? null });
    upsertSearchAttributes([{ key: STATUS, value: holder ? `held by ${holder.operation}` : 'free' }]);
  };
  publish();

  setHandler(holderQuery, () => holder);
  setHandler(releaseSignal, (request) => {
    // Only the holder's own run releases: a late release from an ended run cannot free someone else's lock.
    if (holder && holder.workflowId === request.workflowId && holder.runId === request.runId) {
      holder = undefined;
      publish();
    }
  });
  setHandler(acquireUpdate, async (request) => {
    // One request decided at a time: the liveness check below awaits, and two takers must not both win.
    await condition(() => !deciding);
    deciding = true;
    served = true;
    try {
      if (holder && holder.workflowId === request.workflowId && holder.runId === request.runId) return { acquired: true, holder };
      if (request.mode === 'confirm') return { acquired: false, ...(holder ? { holder } : {}) };
      if (holder) {
        const { running } = await quick.describeLockHolder({ workflowId: holder.workflowId, runId: holder.runId });
        if (running) return { acquired: false, holder };
        log.warn('the lock holder ended without releasing; the lock passes on', { holder });
      }
      holder = { workflowId: request.workflowId, runId: request.runId, operation: request.operation, since: new Date().toISOString() };
      publish();
      return { acquired: true, holder };
    } finally {
      deciding = false;
    }
  });

  // A free lock has nothing to remember: the run ends, and the next taker starts a new one on its own task queue
  // (Update-with-Start), so no lock is left behind on a queue nobody polls any more.
  const free = () => served && holder === undefined && allHandlersFinished();
  await condition(() => free() || workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > HISTORY_LIMIT);
  if (free()) return;
  await condition(allHandlersFinished);
  await continueAsNew<typeof deploymentLockWorkflow>({ deployment: input.deployment, ...(holder ? { holder } : {}) });
}
