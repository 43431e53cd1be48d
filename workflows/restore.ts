// The restore workflow: the vendor's restore steps 1-6, made safe. Nothing changes before the backup verifies and
// the operator confirms the loss report; every change from the stop to the smoke test is undone if any step fails.
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineUpdate,
  executeChild,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { explainFailure } from '../src/errors/failure-explanation';
import { configuredActivities } from './activity-policies';
import { backupWorkflow } from './backup';
import type { BackupInput } from './backup-types';
import type { ConfirmArgs, RecordingsCheck, RestoreInput, RestoreReport, RestoreStep, UnrecoverableAcceptance } from './restore-types';
import { pinBackup, unpinBackups } from './backup-pins';
import { releaseDeploymentLock, takeDeploymentLock } from './deployment-lock-holder';
import { BACKUP_ID, DEPLOYMENT, OPERATION, STATUS, STEP } from './search-attributes';

export const reportQuery = defineQuery<RestoreReport>('report');
export const confirmUpdate = defineUpdate<RestoreReport, [ConfirmArgs]>('confirm');

const nonRetryableErrorTypes = ['RestoreInputInvalid', 'BackupNotFound', 'BackupCorrupt', 'RestoreVerifyFailed', 'SmokeTestFailed', 'RestoreStateInvalid'];

/** What a restore holds while it runs, released in its finally whatever happened: its lock, its pins. */
interface Held {
  lock?: string;
  pins: string[];
}

/** Whether an acceptance covers the recordings the preflight found nowhere: none found, their digest, or a count at least theirs. */
function acceptsUnrecoverable(check: RecordingsCheck | undefined, acceptance: UnrecoverableAcceptance | undefined): boolean {
  if (!check || check.unrecoverable.count === 0) return true;
  if (typeof acceptance === 'number') return acceptance >= check.unrecoverable.count;
  return acceptance === check.unrecoverable.digest;
}

/** What to say when recordings are found nowhere and their loss is not accepted: which ones, and how to accept it. */
function unrecoverableMessage(check: RecordingsCheck, how: string): string {
  const { count, digest, recordings } = check.unrecoverable;
  const named = recordings.map((r) => `${r.key} (${r.problems.map((p) => `${p.location}: ${p.problem}`).join('; ')})`).join(', ');
  return `${count} recording(s) of the backup verify at no location: ${named}${count > recordings.length ? `, and ${count - recordings.length} more` : ''}. To restore without them, ${how} ${digest}`;
}

export async function restoreWorkflow(input: RestoreInput): Promise<RestoreReport> {
  const held: Held = { pins: [] };
  try {
    return await restoreSteps(input, held);
  } finally {
    await unpinBackups(input.deployment, held.pins);
    if (held.lock) await releaseDeploymentLock(held.lock);
  }
}

async function restoreSteps(input: RestoreInput, held: Held): Promise<RestoreReport> {
  const info = workflowInfo();
  const target = input.target ?? 'production';
  const scope = input.scope ?? { kind: 'full' };
  // Unique per run: the workflow id is reused by every restore of the deployment, the databases set aside are not.
  const restoreId = `${info.workflowId}-${info.firstExecutionRunId.replace(/-/g, '').slice(-8)}`;
  const report: RestoreReport = { restoreId, deployment: input.deployment, target, scope, status: 'running', step: 'preflight' };
  let confirmed = input.confirmed === true;

  setHandler(reportQuery, () => report);
  setHandler(
    confirmUpdate,
    (args) => {
      confirmed = true;
      report.confirmedBy = args.confirmedBy ?? 'unknown';
      if (report.recordingsCheck?.unrecoverable.count) report.acceptedUnrecoverable = report.recordingsCheck.unrecoverable.count;
      return report;
    },
    {
      // A wrong answer is rejected before it enters the history: nothing is recorded, nothing changes.
      validator: (args) => {
        if (report.status !== 'awaiting-confirmation' || !report.backup || !report.lossReportDigest) {
          throw new Error(`this restore is not awaiting confirmation (it is ${report.status}, step ${report.step})`);
        }
        if (args.backupId !== report.backup.backupId) {
          throw new Error(`wrong backup id "${args.backupId}": this restore would restore backup ${report.backup.backupId}`);
        }
        if (!acceptsUnrecoverable(report.recordingsCheck, args.acceptUnrecoverable)) {
          throw new Error(unrecoverableMessage(report.recordingsCheck!, 'confirm with acceptUnrecoverable (--accept-unrecoverable) set to'));
        }
        if (args.lossReportDigest !== report.lossReportDigest) {
          throw new Error(`the loss report digest does not match (${args.lossReportDigest.slice(0, 12)}… given, ${report.lossReportDigest.slice(0, 12)}… current): read the report again (vaultpam-backup restore report ${restoreId})`);
        }
      },
    },
  );

  const enter = (step: RestoreStep) => {
    report.step = step;
    upsertSearchAttributes([{ key: STEP, value: step }]);
    setCurrentDetails(`Restore of ${report.backup?.backupId ?? 'a backup'} into ${target}: ${step}${step === 'awaiting-confirmation' ? ` — confirm with: vaultpam-backup restore confirm ${info.workflowId} --backup ${report.backup?.backupId}` : ''}`);
  };
  upsertSearchAttributes([{ key: STATUS, value: 'running' }]);
  const base = { target, deployment: input.deployment, restoreId };
  const { quick, transfer, undoing, timeouts } = await configuredActivities(nonRetryableErrorTypes);

  // Steps 1-3 change nothing: a failure there ends the restore as refused, with the reason in its report.
  const backup = await (async () => {
    try {
      return await prepare();
    } catch (err) {
      if (report.status === 'not-confirmed') throw err;
      report.status = 'refused';
      report.error = explainFailure(err, { timeouts });
      upsertSearchAttributes([{ key: STATUS, value: 'refused' }]);
      throw ApplicationFailure.create({
        type: 'RestoreRefused',
        nonRetryable: true,
        message: `restore refused at step "${report.step}", before any change: ${report.error}`,
        details: [report],
        cause: err instanceof Error ? err : undefined,
      });
    }
  })();

  async function prepare() {
    // 0. The target deployment's lock, held to the end (through the wait for confirmation): no backup, other
    // restore or key rotation of it runs meanwhile; the safety snapshot runs under it.
    enter('lock');
    held.lock = input.targetDeployment ?? input.deployment;
    await takeDeploymentLock(held.lock, 'restore');

    // 1. Preflight: pin the backup (retention keeps it while this runs), then resolve and verify it.
    enter('preflight');
    if (!input.backupId === !input.at) {
      throw ApplicationFailure.create({ type: 'RestoreInputInvalid', nonRetryable: true, message: 'give either a backup id or a time (--at), not both' });
    }
    const pinned = await pinBackup(input.deployment, 'restore', input.backupId ? { backupId: input.backupId } : { at: input.at! });
    held.pins.push(pinned);
    const backup = await transfer.resolveBackup({ deployment: input.deployment, backupId: pinned });
    report.backup = backup;
    upsertSearchAttributes([{ key: BACKUP_ID, value: backup.backupId }]);
    // patched: a restore that started before this check existed replays without it.
    if (scope.kind === 'full' && patched('recordings-blob-check')) {
      // Every blob the restore will read, checked before anything stops; what verifies nowhere must be accepted.
      report.recordingsCheck = await transfer.checkRecordingBlobs({ deployment: input.deployment, restoreId, backup, journal: backup.location });
      if (confirmed && !acceptsUnrecoverable(report.recordingsCheck, input.acceptUnrecoverable)) {
        throw ApplicationFailure.create({
          type: 'RecordingsUnrecoverable',
          nonRetryable: true,
          message: unrecoverableMessage(report.recordingsCheck, 'start it again with acceptUnrecoverable set to'),
        });
      }
      if (confirmed && report.recordingsCheck.unrecoverable.count) report.acceptedUnrecoverable = report.recordingsCheck.unrecoverable.count;
    }

    // 2. The loss report, then the confirmation that echoes it.
    enter('loss-report');
    const loss = await quick.computeLoss({ target, since: backup.recordingsPoint, backup: { rowCounts: backup.rowCounts, ...(backup.recordings ? { recordings: backup.recordings } : {}) } });
    report.lossReport = loss.report;
    report.lossReportDigest = loss.digest;
    if (!confirmed) {
      report.status = 'awaiting-confirmation';
      enter('awaiting-confirmation');
      upsertSearchAttributes([{ key: STATUS, value: 'awaiting-confirmation' }]);
      const answered = await condition(() => confirmed, (input.confirmTimeout ?? '1 hour') as '1 hour');
      if (!answered) {
        report.status = 'not-confirmed';
        upsertSearchAttributes([{ key: STATUS, value: 'not-confirmed' }]);
        throw ApplicationFailure.create({
          type: 'RestoreNotConfirmed',
          nonRetryable: true,
          message: `restore of backup ${backup.backupId} was not confirmed within ${input.confirmTimeout ?? '1 hour'}; nothing was changed`,
          details: [report],
        });
      }
    }
    report.status = 'running';
    upsertSearchAttributes([{ key: STATUS, value: 'running' }]);

    // 3. Safety snapshot: the current state backed up first, so this restore can itself be undone.
    if (input.safetySnapshot ?? target === 'production') {
      enter('safety-snapshot');
      const snapshotInput: BackupInput = {
        deployment: input.targetDeployment ?? input.deployment,
        target,
        reason: `safety snapshot before restore ${restoreId}`,
        requestedBy: 'restore',
        tags: ['pre-restore'],
        underParentLock: true,
      };
      const snapshot = await executeChild(backupWorkflow, {
        workflowId: `backup-${snapshotInput.deployment}`,
        args: [snapshotInput],
        typedSearchAttributes: [
          { key: DEPLOYMENT, value: snapshotInput.deployment },
          { key: OPERATION, value: 'backup' },
        ],
        staticSummary: `Safety snapshot before restore ${restoreId}`,
      });
      report.safetySnapshotId = snapshot.backupId;
    }
    return backup;
  }

  // The restore's journal (previous connectors, recordings plan) goes where the backup verified: that location answers.
  const journaled = { ...base, journal: backup.location };
  const undo: { name: string; run: () => Promise<unknown> }[] = [];
  let stoppedAt: number | undefined;

  /** 7-8. Restart, re-import the connectors, and verify what the seed asks an Org Admin to check. */
  async function restartAndVerify(): Promise<void> {
    enter('restart');
    undo.push({ name: 'stop the control plane again', run: () => undoing.stopServices({ target }) });
    await quick.startServices({ target });
    enter('import-connectors');
    undo.push({ name: 're-import the previous connectors', run: () => undoing.importPreviousConnectors(journaled) });
    await quick.importConnectors({ target, deployment: input.deployment, backup });
    // Resources, Safes, audit log.
    enter('verify');
    report.verify = await quick.verifyRestore({ target, expected: backup.rowCounts });
  }

  /** 9. Smoke test: a session launch against a known resource. The RTO ends here: the control plane serves. */
  async function smokeTest(): Promise<void> {
    enter('smoke-test');
    report.smokeTest = await quick.smokeTest({ target });
    if (stoppedAt !== undefined) report.rtoMs = Date.now() - stoppedAt;
  }
  try {
    if (scope.kind === 'resource') {
      enter('restore-database');
      const result = await transfer.restoreOneResource({ ...base, backup, resourceId: scope.resourceId });
      report.recordings = { restored: result.recordingsRestored, quarantined: 0, unchanged: 0 };
    } else {
      await quick.saveCurrentConnectors(journaled);

      // 4. Stop the control plane.
      enter('stop');
      stoppedAt = Date.now();
      undo.push({ name: 'start the control plane', run: () => undoing.startServices({ target }) });
      await quick.stopServices({ target });

      // 5. The database: restored beside the live one, swapped in by rename.
      enter('restore-database');
      undo.push({ name: 'swap the previous database back', run: () => undoing.swapBackDatabase({ target, restoreId }) });
      const db = await transfer.restoreDatabase({ ...base, backup });
      report.previousDatabase = db.previousDatabase;

      // patched: a restore that started before the recordings moved behind the restart replays in the old order.
      if (patched('recordings-after-restart')) {
        // 6a. The recordings plan, made while nothing writes to the bucket: every key the restore later changes is
        // one listed now, so objects written once the control plane serves again (the smoke test's) are left alone.
        // Its undo is registered here so that a rollback runs it with the control plane stopped again.
        enter('plan-recordings');
        undo.push({ name: 'put quarantined recordings back', run: () => undoing.revertRecordings(journaled) });
        const plan = await transfer.planRecordingsRestore({ ...journaled, backup });
        report.recordingsProgress = { state: 'planned', planned: plan.planned };

        await restartAndVerify();
        await smokeTest();

        // 6b. Recordings restored behind the serving control plane; a failure still rolls everything back.
        enter('restore-recordings');
        report.recordingsProgress.state = 'restoring';
        report.recordings = await transfer.restoreRecordings({ ...journaled, backup, ...(plan.alreadyPlanned ? {} : { unchanged: plan.unchanged }) });
        report.recordingsProgress.state = 'complete';
        report.recordingsCompleteMs = Date.now() - stoppedAt;
      } else {
        // 6. Recordings: newer objects quarantined, missing ones restored.
        enter('restore-recordings');
        undo.push({ name: 'put quarantined recordings back', run: () => undoing.revertRecordings(journaled) });
        report.recordings = await transfer.restoreRecordings({ ...journaled, backup });
        await restartAndVerify();
      }
    }

    if (report.smokeTest === undefined) await smokeTest();

    enter('done');
    report.status = 'completed';
    upsertSearchAttributes([{ key: STATUS, value: 'completed' }]);
    return report;
  } catch (err) {
    const failedStep = report.step;
    report.error = explainFailure(err, { timeouts });
    enter('rollback');
    report.rollback = [];
    // 10. Roll everything back, newest first, even if the workflow is being cancelled; keep going past a failing undo.
    await CancellationScope.nonCancellable(async () => {
      for (const step of undo.reverse()) {
        try {
          await step.run();
          report.rollback!.push({ step: step.name, ok: true });
        } catch (undoErr) {
          const error = explainFailure(undoErr, { timeouts, heartbeat: 'undoHeartbeatMs' });
          log.error(`rollback step "${step.name}" failed`, { error });
          report.rollback!.push({ step: step.name, ok: false, error });
        }
      }
    });
    const clean = report.rollback.every((r) => r.ok);
    report.status = clean ? 'rolled-back' : 'failed';
    upsertSearchAttributes([{ key: STATUS, value: report.status }]);
    throw ApplicationFailure.create({
      type: clean ? 'RestoreRolledBack' : 'RestoreRollbackIncomplete',
      nonRetryable: true,
      message: clean
        ? `restore of backup ${backup.backupId} failed at step "${failedStep}": ${report.error}. Every change was rolled back; the deployment is as it was.`
        : `restore of backup ${backup.backupId} failed at step "${failedStep}": ${report.error}. The rollback did not complete: ${report.rollback.filter((r) => !r.ok).map((r) => `${r.step}: ${r.error}`).join('; ')}`,
      details: [report],
    });
  }
}
