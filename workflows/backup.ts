// The backup workflow: the vendor's backup steps 1-6 as retryable activities, each with its undo (saga).
import {
  ApplicationFailure,
  defineQuery,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { explainFailure } from '../src/errors/failure-explanation';
import { configuredActivities } from './activity-policies';
import { allEnded, runCompensations, valuesOrFirstFailure, type Compensation } from './compensations';
import type { BackupInput, BackupProgress, BackupResult, BackupStep, SyncResult, VerifyResult } from './backup-types';
import { auditPrincipal, recordAudit, recordAuditQuietly } from './audit-recorder';
import { underDeploymentLock } from './deployment-lock-holder';
import { BACKUP_ID, STATUS, STEP } from './search-attributes';

export const progressQuery = defineQuery<BackupProgress>('progress');

const nonRetryableErrorTypes = ['LocationsInvalid', 'BackupCorrupt'];

function sum(parts: SyncResult[], field: Exclude<keyof SyncResult, 'index' | 'locationsLeftOut'>): number {
  return parts.reduce((total, part) => total + part[field], 0);
}

/** The backup id: UTC start time, sortable, plus a run-specific suffix. */
export function backupIdFor(startTime: Date, runId: string): string {
  const t = startTime.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${t}-${runId.replace(/-/g, '').slice(-6)}`;
}

/**
 * Holds the deployment's lock for the whole backup (a restore's safety snapshot runs under its restore's lock
 * instead); refused with a DeploymentLocked failure naming the holder when another operation has it.
 */
export async function backupWorkflow(input: BackupInput): Promise<BackupResult> {
  return underDeploymentLock(input.deployment, 'backup', input.underParentLock ? 'parent' : 'own', () => backupSteps(input));
}

async function backupSteps(input: BackupInput): Promise<BackupResult> {
  const info = workflowInfo();
  const backupId = backupIdFor(info.startTime, info.firstExecutionRunId);
  const target = input.target ?? 'production';
  const progress: BackupProgress = { backupId, step: 'starting', status: 'running', stepsDone: [] };
  setHandler(progressQuery, () => progress);
  const { quick, transfer, shards: shardQueue, timeouts } = await configuredActivities(nonRetryableErrorTypes);

  const enter = (step: BackupStep) => {
    if (progress.step !== 'starting' && progress.step !== step) progress.stepsDone.push(progress.step);
    progress.step = step;
    upsertSearchAttributes([{ key: STEP, value: step }]);
    setCurrentDetails(`Backup ${backupId}: ${step}${progress.stepsDone.length ? ` (done: ${progress.stepsDone.join(', ')})` : ''}`);
  };
  upsertSearchAttributes([
    { key: BACKUP_ID, value: backupId },
    { key: STATUS, value: 'running' },
  ]);

  const undo: Compensation[] = [];
  let listing: Parameters<Activities['discardBackup']>[0]['listing'];
  let previousBackupId: string | undefined;
  const base = { deployment: input.deployment, backupId };

  const principal = auditPrincipal(input.requestedBy);
  try {
    enter('prepare');
    await recordAudit(input.deployment, 'backup.started', principal, { backupId }, { target, ...(input.reason ? { reason: input.reason } : {}), ...(input.deep ? { deep: true } : {}) });
    const prepared = await quick.prepareBackup(base);
    previousBackupId = prepared.previousBackupId;
    undo.push({ name: 'discard partial artifacts', run: () => transfer.discardBackup({ ...base, ...(listing ? { listing } : {}) }) });

    enter('quiesce');
    undo.push({ name: 'leave maintenance mode', run: () => quick.unquiesce({ target, backupId }) });
    const { startedAt } = await quick.quiesce({ target, backupId });

    enter('dump');
    const capture = await transfer.dump({ ...base, target, quiesceStartedAt: startedAt });
    progress.pauseMs = capture.quiesce.pauseMs;
    const dumpBytes = Object.values(capture.dbParts ?? {}).reduce((total, part) => total + part.plaintextBytes, capture.db.plaintextBytes);
    progress.dumpBytes = dumpBytes;

    enter('snapshot-recordings');
    const snapshot = await transfer.snapshotRecordings({ ...base, target, recordingsPoint: capture.quiesce.recordingsPoint, ...(previousBackupId ? { previousBackupId } : {}) });
    listing = snapshot.listing;
    progress.recordings = { objects: snapshot.objects, bytes: snapshot.bytes };

    enter('sync-recordings');
    // Shards run as separate activities, so every worker polling the queue takes a share of the copy. Every shard
    // ends (done or failed) before any undo runs, so no copy outlives the cleanup.
    const shards = snapshot.shards;
    // patched: a backup begun while shards ran on the main task queue replays them there.
    const copy = patched('shards-on-their-own-queue') ? shardQueue : transfer;
    const parts: SyncResult[] = await allEnded(
      Array.from({ length: shards }, (_, index) => copy.syncRecordings({ ...base, target, listing: snapshot.listing, shard: { index, of: shards }, ...(previousBackupId ? { previousBackupId } : {}) })),
    );
    const sync = {
      objects: sum(parts, 'objects'),
      bytes: sum(parts, 'bytes'),
      copiedObjects: sum(parts, 'copiedObjects'),
      copiedBytes: sum(parts, 'copiedBytes'),
      reusedObjects: sum(parts, 'reusedObjects'),
      resumedObjects: sum(parts, 'resumedObjects'),
      healedObjects: sum(parts, 'healedObjects'),
      index: shards === 1 ? parts[0]!.index : await transfer.assembleIndex({ ...base, parts: parts.map((p) => p.index) }),
    };

    const artifacts = { ...capture.dbParts, db: capture.db, connectors: capture.connectors, recordingsIndex: sync.index };
    const ownBlobs = sync.copiedObjects + sync.resumedObjects;
    const verifyInput = { ...base, target, location: prepared.primary, artifacts, rowCounts: capture.postgres.rowCounts, deep: input.deep ?? false, blobs: 'confirmed' as const, readData: 'sample' as const, ownBlobs };
    const others = prepared.locations.filter((l) => l.name !== prepared.primary);
    const leftOut = new Set(parts.flatMap((p) => p.locationsLeftOut ?? []));
    const replicateTo = (l: { name: string }) =>
      transfer.replicate({ ...base, to: l.name, artifacts, ...(previousBackupId ? { previousBackupId } : {}), ...(leftOut.has(l.name) ? {} : { blobsWrittenByCopy: true, indexFromCopy: { shared: sync.reusedObjects, own: ownBlobs } }) });
    let verify: VerifyResult;
    // patched: a backup begun while verify and the copies ran one after the other replays them that way.
    if (patched('replicate-beside-verify')) {
      enter('verify');
      // Verify reads the primary; the copies read it too and write only the other locations: neither changes what the
      // other reads, so they run side by side. No manifest is written before both succeed, and every one ends (done
      // or failed) before any undo runs: an undo racing a copy still writing would leave its writes.
      const verifying = Promise.allSettled([transfer.verifyBackup(verifyInput)]);
      const copying = Promise.allSettled(others.map(replicateTo));
      const [verified] = await verifying;
      const replicated = await copying;
      if (verified!.status === 'rejected') throw verified!.reason;
      verify = verified!.value;
      enter('replicate');
      valuesOrFirstFailure(replicated);
    } else {
      enter('verify');
      verify = await transfer.verifyBackup(verifyInput);

      enter('replicate');
      await allEnded(others.map(replicateTo));
    }

    enter('commit');
    // Recorded before the manifest is written, and anchored in it: no committed backup exists without its entry, and a
    // trail cut after this point no longer holds what the manifest names. (A commit that then fails records its failure.)
    const auditHead = await recordAudit(input.deployment, 'backup.committed', principal, { backupId }, { locations: prepared.locations.map((l) => l.name), recordings: sync.objects, dumpBytes: capture.db.plaintextBytes });
    await quick.commitBackup({
      draft: {
        backupId,
        deployment: input.deployment,
        workflowId: info.workflowId,
        startedAt: info.startTime.toISOString(),
        ...(input.reason ? { reason: input.reason } : {}),
        ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
        tags: input.tags ?? [],
        quiesce: capture.quiesce,
        postgres: capture.postgres,
        artifacts,
        connectors: { count: capture.connectorCount },
        recordings: {
          objects: sync.objects,
          bytes: sync.bytes,
          copiedObjects: sync.copiedObjects + sync.resumedObjects,
          copiedBytes: sync.copiedBytes,
          reusedObjects: sync.reusedObjects,
          ...(previousBackupId ? { previousBackupId } : {}),
        },
        verify: { level: verify.level, verifiedAt: verify.verifiedAt, dumpEntries: verify.dumpEntries, ...(verify.deepRowCounts ? { deepRowCounts: verify.deepRowCounts } : {}) },
        locations: prepared.locations,
        ...(auditHead ? { auditHead } : {}),
      },
    });

    progress.status = 'committed';
    upsertSearchAttributes([{ key: STATUS, value: 'committed' }]);

    // Retention, under this workflow's lock. The backup is committed: a failure here is logged, not undone.
    enter('prune');
    let pruned: BackupResult['pruned'];
    try {
      const result = await transfer.prune({ deployment: input.deployment });
      pruned = { removed: result.removed, blobsRemoved: result.blobsRemoved, ...(result.keptForPins.length ? { keptForPins: result.keptForPins } : {}) };
      if (result.removed.length) await recordAuditQuietly(input.deployment, 'backup.pruned', principal, { backupId }, { removed: result.removed, blobsRemoved: result.blobsRemoved, keptForPins: result.keptForPins });
    } catch (err) {
      log.warn('pruning old backups failed; the next backup tries again', { error: (err as Error).message });
    }
    enter('done');
    return {
      backupId,
      deployment: input.deployment,
      locations: prepared.locations.map((l) => l.name),
      pauseMs: capture.quiesce.pauseMs,
      dumpBytes,
      recordings: { objects: sync.objects, bytes: sync.bytes, copiedObjects: sync.copiedObjects + sync.resumedObjects, copiedBytes: sync.copiedBytes, reusedObjects: sync.reusedObjects },
      verify,
      ...(pruned ? { pruned } : {}),
    };
  } catch (err) {
    const failedStep = progress.step;
    progress.status = 'failed';
    // The activity's own error says what is wrong and what to do; a timeout is explained with the setting to tune.
    progress.error = explainFailure(err, { timeouts });
    progress.step = 'compensate';
    upsertSearchAttributes([
      { key: STEP, value: 'compensate' },
      { key: STATUS, value: 'failed' },
    ]);
    // Undo newest first, even when the workflow itself was cancelled; a failing undo is logged and the rest still run.
    await runCompensations(undo);
    await recordAuditQuietly(input.deployment, 'backup.failed', principal, { backupId }, { step: failedStep, error: progress.error.slice(0, 500) });
    throw ApplicationFailure.create({
      type: 'BackupFailed',
      message: `backup ${backupId} of ${input.deployment} failed at step "${failedStep}": ${progress.error}. Maintenance mode was left and no partial backup remains.`,
      nonRetryable: true,
      cause: err instanceof Error ? err : undefined,
    });
  }
}
