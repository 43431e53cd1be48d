// Point-in-time protection of one deployment: a base backup whenever one is due, then WAL slices, forever (continue-as-new).
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

  const slicesPerRun = input.slicesPerRun ?? 100;
  for (let run = 0; run < slicesPerRun && !state.stopping; run++) {
    const now = Date.now();
    if (!state.lastBaseAt || now - Date.parse(state.lastBaseAt) >= input.baseBackupEveryHours * HOUR_MS) {
      const baseId = `${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${workflowInfo().runId.slice(0, 8)}`;
      const taken = await base.takeBaseBackup({ target: input.target, baseId });
      state.lastBaseAt = new Date(now).toISOString();
      state.lastBaseId = taken.baseId;
    }
    const slice = await stream.streamWal({ target: input.target, ...(input.sliceSeconds ? { sliceSeconds: input.sliceSeconds } : {}), ...(input.partialUploadSeconds ? { partialUploadSeconds: input.partialUploadSeconds } : {}) });
    if (slice.mark) state.mark = slice.mark;
    state.slices++;
    // A stop asked during a slice ends the workflow after it; the slot stays, so protection resumes without a gap.
    await condition(() => state.stopping === true, 1);
  }
  if (state.stopping) return state;
  return continueAsNew<typeof protectWorkflow>({ ...input, state: { ...state, stopping: false } });
}
