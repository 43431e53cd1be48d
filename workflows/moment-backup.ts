// A committed backup made from a moment of point-in-time protection, for a restore to that moment: the database as
// recovered to the moment, the recordings checkpoint and connector export in force then. Verified and replicated like
// any backup, so the restore that follows is the ordinary one (loss report, approvals, swap, verification, rollback).
import { ApplicationFailure, defineQuery, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { MomentCapture } from '../activities/dump-moment';
import type { PointInTimeSelection } from '../activities/point-in-time';
import { POINT_IN_TIME_TAG } from '../src/catalog/retention';
import { explainFailure } from '../src/errors/failure-explanation';
import { configuredActivities } from './activity-policies';
import { allEnded, runCompensations, type Compensation } from './compensations';
import { auditPrincipal, recordAudit, recordAuditQuietly } from './audit-recorder';
import { backupIdFor } from './backup';
import { underDeploymentLock } from './deployment-lock-holder';
import { BACKUP_ID, STATUS, STEP } from './search-attributes';

export interface MomentBackupInput {
  /** The protected deployment (configuration deployment.name). */
  deployment: string;
  /** The moment (ISO 8601): a database commit time inside the covered window. */
  at: string;
  requestedBy?: string;
  reason?: string;
  /** Run under the parent's lock of the deployment (a restore into it holds it); otherwise this run takes it. */
  underParentLock?: boolean;
}

export type MomentBackupStep = 'starting' | 'select' | 'recover-and-dump' | 'verify' | 'replicate' | 'commit' | 'compensate' | 'done';

export interface MomentBackupProgress {
  backupId: string;
  at: string;
  step: MomentBackupStep;
  status: 'running' | 'committed' | 'failed';
  selection?: PointInTimeSelection;
  error?: string;
}

export interface MomentBackupResult {
  backupId: string;
  at: string;
  selection: PointInTimeSelection;
  baseId: string;
  segments: number;
  locations: string[];
}

export const momentProgressQuery = defineQuery<MomentBackupProgress>('progress');

const nonRetryableErrorTypes = ['LocationsInvalid', 'BackupCorrupt', 'MomentOutOfRange', 'MomentChanged', 'PointInTimeOutsideWindow', 'PointInTimeNotConfigured', 'RestoreInputInvalid', 'InputInvalid'];

export async function momentBackupWorkflow(input: MomentBackupInput): Promise<MomentBackupResult> {
  return underDeploymentLock(input.deployment, 'backup', input.underParentLock ? 'parent' : 'own', () => momentBackupSteps(input));
}

async function momentBackupSteps(input: MomentBackupInput): Promise<MomentBackupResult> {
  const info = workflowInfo();
  const backupId = backupIdFor(info.startTime, info.firstExecutionRunId);
  const progress: MomentBackupProgress = { backupId, at: input.at, step: 'starting', status: 'running' };
  setHandler(momentProgressQuery, () => progress);
  const { quick, transfer, timeouts } = await configuredActivities(nonRetryableErrorTypes);
  const enter = (step: MomentBackupStep) => {
    progress.step = step;
    upsertSearchAttributes([{ key: STEP, value: step }]);
    setCurrentDetails(`Backup ${backupId} of ${input.deployment} as of ${input.at}: ${step}`);
  };
  upsertSearchAttributes([
    { key: BACKUP_ID, value: backupId },
    { key: STATUS, value: 'running' },
  ]);
  const base = { deployment: input.deployment, backupId };
  const principal = auditPrincipal(input.requestedBy);
  const undo: Compensation[] = [];
  try {
    enter('select');
    // The moment's checkpoint and export first: a moment they do not cover is refused before anything is written.
    const selection = await quick.selectPointInTime({ deployment: input.deployment, at: input.at });
    progress.selection = selection;
    const prepared = await quick.prepareBackup(base);
    undo.push({ name: 'discard partial artifacts', run: () => transfer.discardBackup(base) });

    enter('recover-and-dump');
    const capture: MomentCapture = await transfer.dumpMoment({ ...base, selection });
    const artifacts = { ...capture.dbParts, db: capture.db, connectors: capture.connectors, recordingsIndex: capture.recordingsIndex };

    enter('verify');
    // The dump, its parts and the connectors are read whole at the primary. The blobs the index names were all written
    // by checkpoints: the restore this backup is made for checks every one at every location before anything stops.
    const verify = await transfer.verifyBackup({ ...base, target: 'production', location: prepared.primary, artifacts, rowCounts: capture.postgres.rowCounts, deep: false, blobs: 'written', readData: 'sample' });

    enter('replicate');
    const others = prepared.locations.filter((l) => l.name !== prepared.primary);
    await allEnded(others.map((l) => transfer.replicate({ ...base, to: l.name, artifacts })));

    enter('commit');
    const auditHead = await recordAudit(input.deployment, 'backup.committed', principal, { backupId }, { locations: prepared.locations.map((l) => l.name), recordings: capture.recordings.objects, dumpBytes: capture.db.plaintextBytes, at: input.at });
    await quick.commitBackup({
      draft: {
        backupId,
        deployment: input.deployment,
        workflowId: info.workflowId,
        startedAt: info.startTime.toISOString(),
        reason: input.reason ?? `the deployment as of ${input.at}`,
        ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
        tags: [POINT_IN_TIME_TAG],
        quiesce: capture.quiesce,
        postgres: capture.postgres,
        artifacts,
        connectors: { count: capture.connectorCount },
        recordings: { objects: capture.recordings.objects, bytes: capture.recordings.bytes, copiedObjects: 0, copiedBytes: 0, reusedObjects: capture.recordings.objects },
        verify: { level: verify.level, verifiedAt: verify.verifiedAt, dumpEntries: verify.dumpEntries },
        locations: prepared.locations,
        moment: {
          at: selection.at,
          baseId: capture.baseId,
          checkpointId: selection.checkpoint.checkpointId,
          checkpointCoveredAt: selection.checkpoint.coveredAt,
          exportId: selection.connectors.exportId,
          exportedAt: selection.connectors.exportedAt,
        },
        ...(auditHead ? { auditHead } : {}),
      },
    });
    progress.status = 'committed';
    upsertSearchAttributes([{ key: STATUS, value: 'committed' }]);
    enter('done');
    return { backupId, at: selection.at, selection, baseId: capture.baseId, segments: capture.segments, locations: prepared.locations.map((l) => l.name) };
  } catch (err) {
    const failedStep = progress.step;
    progress.status = 'failed';
    progress.error = explainFailure(err, { timeouts });
    enter('compensate');
    upsertSearchAttributes([{ key: STATUS, value: 'failed' }]);
    await runCompensations(undo);
    await recordAuditQuietly(input.deployment, 'backup.failed', principal, { backupId }, { step: failedStep, error: progress.error.slice(0, 500), at: input.at });
    throw ApplicationFailure.create({
      type: 'MomentBackupFailed',
      message: `the backup of ${input.deployment} as of ${input.at} failed at step "${failedStep}": ${progress.error}. No partial backup remains.`,
      nonRetryable: true,
      cause: err instanceof Error ? err : undefined,
    });
  }
}
