// Progress figures of any running workflow: its step, and the objects and bytes its running activities last heartbeated.
//
// The server keeps each pending activity's last heartbeat, so the figures need no worker; the step name comes from
// the workflow's own query where it has one (backup: `progress`, restore: `report`), bounded by a deadline.
// Child workflows (a drill's restore, a restore's safety backup) are followed a few levels down.
import { defaultPayloadConverter } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { BackupProgress } from '../../workflows/backup-types';
import type { RestoreReport } from '../../workflows/restore-types';

/** What a workflow reports of the work in hand; any figure may be unknown. */
export interface ProgressFigures {
  /** What runs now: the backup's or restore's step, else the running activity. */
  step: string;
  objects?: number;
  objectsTotal?: number;
  bytes?: number;
  bytesTotal?: number;
  /** The running activity's attempt, when it is a retry. */
  attempt?: number;
}

export interface WorkflowProgress extends ProgressFigures {
  workflowStatus: string;
}

/** Heartbeat fields that count objects (recordings, blobs, index entries) or bytes, in the order they are preferred. */
const OBJECT_FIELDS = ['processed', 'blobsDone', 'entriesDone', 'blobsChecked', 'checked', 'blobsRead', 'done', 'objects'] as const;
const BYTE_FIELDS = ['bytes', 'bytesCopied', 'bytesRead', 'copiedBytes'] as const;

const QUERY_DEADLINE_MS = 3000;
const CHILD_DEPTH = 3;

function firstNumber(details: Record<string, unknown>, fields: readonly string[]): number | undefined {
  for (const field of fields) {
    const value = details[field];
    if (typeof value === 'number' && Number.isFinite(value)) return value;
  }
  return undefined;
}

/** Heartbeat details as a record, or undefined when absent or not a JSON object (a heartbeat is free-form). */
export function heartbeatRecord(payload: Parameters<typeof defaultPayloadConverter.fromPayload>[0] | undefined): Record<string, unknown> | undefined {
  if (!payload) return undefined;
  try {
    const value = defaultPayloadConverter.fromPayload(payload);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const add = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : a + b);

async function stepOf(client: Client, workflowType: string, workflowId: string, runId: string): Promise<{ step?: string; backup?: BackupProgress }> {
  const handle = client.workflow.getHandle(workflowId, runId);
  const withDeadline = <T>(fn: () => Promise<T>) => client.withDeadline(Date.now() + QUERY_DEADLINE_MS, fn).catch(() => undefined);
  if (workflowType === 'backupWorkflow') {
    const backup = await withDeadline(() => handle.query<BackupProgress>('progress'));
    return backup ? { step: backup.step, backup } : {};
  }
  if (workflowType === 'restoreWorkflow') {
    const report = await withDeadline(() => handle.query<RestoreReport>('report'));
    return report ? { step: report.step } : {};
  }
  return {};
}

/** The progress of a workflow (the latest run of the id) and of its running children. */
export async function readWorkflowProgress(client: Client, workflowId: string, runId?: string, depth = CHILD_DEPTH): Promise<WorkflowProgress> {
  const description = await client.workflow.getHandle(workflowId, runId).describe();
  const workflowStatus = description.status.name;
  if (workflowStatus !== 'RUNNING') return { workflowStatus, step: workflowStatus.toLowerCase() };
  const figures: ProgressFigures = { step: '' };
  const activityNames: string[] = [];
  for (const pending of description.raw.pendingActivities ?? []) {
    const name = pending.activityType?.name;
    if (name && !activityNames.includes(name)) activityNames.push(name);
    if ((pending.attempt ?? 1) > 1) figures.attempt = Math.max(figures.attempt ?? 1, pending.attempt ?? 1);
    const details = heartbeatRecord(pending.heartbeatDetails?.payloads?.[0] ?? undefined);
    if (!details) continue;
    const objects = firstNumber(details, OBJECT_FIELDS);
    const bytes = firstNumber(details, BYTE_FIELDS);
    if (objects !== undefined) figures.objects = add(figures.objects, objects);
    if (bytes !== undefined) figures.bytes = add(figures.bytes, bytes);
  }
  const own = await stepOf(client, description.type, workflowId, description.runId);
  // The recordings' totals are known once the snapshot listed them; the copy's counters run against them.
  if (own.backup?.step === 'sync-recordings' && own.backup.recordings) {
    figures.objectsTotal = own.backup.recordings.objects;
    figures.bytesTotal = own.backup.recordings.bytes;
  }
  let childStep: string | undefined;
  if (depth > 0) {
    for (const child of (description.raw.pendingChildren ?? []).slice(0, 4)) {
      if (!child.workflowId) continue;
      const progress = await readWorkflowProgress(client, child.workflowId, child.runId ?? undefined, depth - 1).catch(() => undefined);
      if (!progress || progress.workflowStatus !== 'RUNNING') continue;
      childStep ??= `${child.workflowTypeName ?? 'child'}: ${progress.step}`;
      figures.objects = add(figures.objects, progress.objects);
      figures.bytes = add(figures.bytes, progress.bytes);
      figures.objectsTotal = add(figures.objectsTotal, progress.objectsTotal);
      figures.bytesTotal = add(figures.bytesTotal, progress.bytesTotal);
      if (progress.attempt) figures.attempt = Math.max(figures.attempt ?? 1, progress.attempt);
    }
  }
  // The workflow's own step names the work; the activity's name only stands in where the workflow has no step.
  const step = [own.step, childStep ?? (own.step || !activityNames.length ? undefined : activityNames.join(', '))].filter(Boolean).join(' / ');
  return { ...figures, step: step || 'starting', workflowStatus };
}
