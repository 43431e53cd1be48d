// Point-in-time protection of one deployment: a base backup whenever one is due, then WAL slices, forever (continue-as-new),
// each beside a recordings checkpoint and a connector export.
import { condition, continueAsNew, defineQuery, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { PROTECTION_MARKS_QUERY, STOP_PROTECTION_SIGNAL, type ProtectInput, type ProtectionState } from './protect-types';

export const stopProtection = defineSignal(STOP_PROTECTION_SIGNAL);
export const protectionMarks = defineQuery<ProtectionState>(PROTECTION_MARKS_QUERY);

const HOUR_MS = 3_600_000;

export async function protectWorkflow(input: ProtectInput): Promise<ProtectionState> {
  const state: ProtectionState = { slices: 0, ...input.state };
  setHandler(stopProtection, () => {
    state.stopping = true;
  });
  setHandler(protectionMarks, () => state);

  const base = proxyActivities<Activities>({
    startToCloseTimeout: '12h',
    heartbeatTimeout: `${input.heartbeatSeconds ?? 30}s`,
    retry: { maximumInterval: '1m' },
  });
  const stream = proxyActivities<Activities>({
    startToCloseTimeout: `${(input.sliceSeconds ?? 3600) + 600}s`,
    heartbeatTimeout: `${input.heartbeatSeconds ?? 30}s`,
    // A slice resumes from the slot: retry soon, forever, so a crash costs seconds of recovery point.
    retry: { initialInterval: '1s', maximumInterval: '10s' },
  });

  const objects = proxyActivities<Activities>({
    startToCloseTimeout: '12h',
    heartbeatTimeout: `${input.heartbeatSeconds ?? 30}s`,
    // PruneSweeping is retried: a checkpoint waits while prune sweeps blobs.
    retry: { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: 10 },
  });
  /** The bucket and the inventory, beside the slice: a failure is recorded and the WAL stream goes on. */
  const checkpointObjects = async (deployment: string): Promise<void> => {
    try {
      const recordings = await objects.checkpointRecordings({ deployment, target: input.target });
      state.recordingsCheckpoint = { id: recordings.checkpointId, coveredAt: recordings.coveredAt };
      const connectors = await objects.checkpointConnectors({ deployment, target: input.target });
      if (connectors.changed && connectors.exportId) state.connectorExport = { id: connectors.exportId, exportedAt: connectors.exportedAt };
    } catch (err) {
      state.checkpointProblem = { at: new Date(Date.now()).toISOString(), message: err instanceof Error ? err.message : String(err) };
    }
  };

  const slicesPerRun = input.slicesPerRun ?? 100;
  for (let run = 0; run < slicesPerRun && !state.stopping; run++) {
    const now = Date.now();
    if (!state.lastBaseAt || now - Date.parse(state.lastBaseAt) >= input.baseBackupEveryHours * HOUR_MS) {
      const baseId = `${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${workflowInfo().runId.slice(0, 8)}`;
      const taken = await base.takeBaseBackup({ target: input.target, baseId });
      state.lastBaseAt = new Date(now).toISOString();
      state.lastBaseId = taken.baseId;
      // A new base: bases past the window, and the WAL no kept base needs, can go.
      const pruned = await base.prunePointInTime({ target: input.target });
      state.pruned = { basesRemoved: pruned.basesRemoved.length, walObjectsRemoved: pruned.walObjectsRemoved };
    }
    const [slice] = await Promise.all([
      stream.streamWal({ target: input.target, ...(input.sliceSeconds ? { sliceSeconds: input.sliceSeconds } : {}), ...(input.partialUploadSeconds ? { partialUploadSeconds: input.partialUploadSeconds } : {}) }),
      input.deployment ? checkpointObjects(input.deployment) : Promise.resolve(),
    ]);
    if (slice.mark) state.mark = slice.mark;
    state.slices++;
    // A stop asked during a slice ends the workflow after it; the slot stays, so protection resumes without a gap.
    await condition(() => state.stopping === true, 1);
  }
  if (state.stopping) return state;
  return continueAsNew<typeof protectWorkflow>({ ...input, state: { ...state, stopping: false } });
}
