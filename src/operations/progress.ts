// Live progress of a backup: the workflow's `progress` query plus what its running activity last heartbeated.
import { defaultPayloadConverter } from '@temporalio/common';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { BackupProgress } from '../../workflows/backup-types';
import { formatBytes } from './byte-size';

export interface LiveProgress extends BackupProgress {
  /** Activity running now and its last heartbeat (bytes, objects done, ...). */
  activity?: { name: string; attempt: number; details?: Record<string, unknown> };
  workflowStatus: string;
}

/**
 * A running workflow answers the query (through a worker, so it is bounded by a deadline); a closed one is read from
 * its search attributes, which the server keeps without any worker.
 */
export async function readBackupProgress(client: Client, handle: WorkflowHandle): Promise<LiveProgress> {
  const description = await handle.describe();
  const running = description.status.name === 'RUNNING';
  const progress = running
    ? await client.withDeadline(Date.now() + 3000, () => handle.query<BackupProgress>('progress')).catch(() => undefined)
    : undefined;
  const attribute = (name: string) => {
    const value = description.searchAttributes[name]?.[0];
    return typeof value === 'string' ? value : undefined;
  };
  const pending = description.raw.pendingActivities?.[0];
  let details: Record<string, unknown> | undefined;
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  if (payload) {
    try {
      details = defaultPayloadConverter.fromPayload(payload) as Record<string, unknown>;
    } catch {
      details = undefined;
    }
  }
  return {
    ...(progress ?? {
      backupId: attribute('VaultpamBackupId') ?? '',
      step: (attribute('VaultpamStep') ?? 'starting') as BackupProgress['step'],
      status: (attribute('VaultpamStatus') ?? 'running') as BackupProgress['status'],
      stepsDone: [],
    }),
    workflowStatus: description.status.name,
    ...(pending ? { activity: { name: pending.activityType?.name ?? '?', attempt: pending.attempt ?? 1, ...(details ? { details } : {}) } } : {}),
  };
}

export { formatBytes };

export function formatProgress(p: LiveProgress): string {
  const parts = [`backup ${p.backupId}`, `step ${p.step}`];
  const d = p.activity?.details;
  if (d) {
    if (typeof d.bytes === 'number' && p.step === 'dump') parts.push(`${formatBytes(d.bytes)} dumped`);
    if (typeof d.processed === 'number' && p.recordings) parts.push(`${d.processed}/${p.recordings.objects} recordings (${formatBytes(Number(d.copiedBytes ?? 0))} copied)`);
    if (typeof d.blobsDone === 'number') parts.push(`${d.blobsDone} blobs replicated`);
    if (typeof d.blobsChecked === 'number') parts.push(`${d.blobsChecked} blobs checked`);
  }
  if (p.activity && p.activity.attempt > 1) parts.push(`attempt ${p.activity.attempt}`);
  return parts.join(' · ');
}
