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
import { approvalRejection, approvalsSuffice, type RestorePolicy } from '../src/approvals/approval-rules';
import type { SignedStatement } from '../src/approvals/signed-statement';
import { explainFailure } from '../src/errors/failure-explanation';
import type { RestoreEvent } from '../activities/restore-notifications';
import { configuredActivities, type ActivityPolicies } from './activity-policies';
import { backupWorkflow } from './backup';
import { momentBackupWorkflow, type MomentBackupInput } from './moment-backup';
import type { BackupInput } from './backup-types';
import type { ConfirmArgs, RecordingsCheck, RestoreApproval, RestoreInput, RestoreReport, RestoreStep, UnrecoverableAcceptance } from './restore-types';
import { pinBackup, unpinBackups } from './backup-pins';
import { releaseDeploymentLock, takeDeploymentLock } from './deployment-lock-holder';
import { auditRestoreConfirmed, auditRestoreOutcome, auditRestoreRequested } from './restore-audit';
import { BACKUP_ID, DEPLOYMENT, OPERATION, STATUS, STEP } from './search-attributes';

export const reportQuery = defineQuery<RestoreReport>('report');
export const confirmUpdate = defineUpdate<RestoreReport, [ConfirmArgs]>('confirm');

const nonRetryableErrorTypes = ['PointInTimeOutsideWindow', 'RestoreInputInvalid', 'BackupNotFound', 'BackupCorrupt', 'RestoreVerifyFailed', 'SmokeTestFailed', 'RestoreStateInvalid', 'RestoreRequestInvalid', 'ApprovalInvalid', 'RestoreNotApproved'];

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
  // patched: a restore begun before signed approvals replays with the confirmation it ran with.
  const signedApprovals = patched('signed-approvals');
  /** The worker's policy for this target, asked for first thing; the requester, from the verified signed request only. */
  let policy: RestorePolicy | undefined;
  let requester: string | undefined;
  const approvalStatements: SignedStatement[] = [];
  let policies: ActivityPolicies | undefined;
  const requestExpected = {
    workflowId: info.workflowId,
    deployment: input.deployment,
    target,
    scope,
    ...(input.backupId ? { backupId: input.backupId } : {}),
    ...(input.at ? { at: input.at } : {}),
    startedAt: info.startTime.toISOString(),
  };
  const approvalExpected = () => ({ workflowId: info.workflowId, restoreId, backupId: report.backup!.backupId, lossReportDigest: report.lossReportDigest! });
  const refuseApproval = (message: string) => ApplicationFailure.create({ type: 'ApprovalInvalid', nonRetryable: true, message });

  setHandler(reportQuery, () => report);
  setHandler(
    confirmUpdate,
    async (args) => {
      if (signedApprovals) {
        if (args.approval) {
          // The signature is checked by the worker; an approval that fails changes nothing.
          let approval: RestoreApproval;
          try {
            approval = await policies!.quick.verifyApproval({ approval: args.approval, expected: approvalExpected() });
          } catch (err) {
            throw refuseApproval(`approval refused: ${explainFailure(err, { timeouts: policies!.timeouts })}`);
          }
          if (confirmed) throw refuseApproval('this restore is already approved');
          // Checked again: another approval may have been accepted while this one was being verified.
          const rejection = approvalRejection(approval, requester, report.approvals ?? [], policy!);
          if (rejection) throw refuseApproval(rejection);
          report.approvals = [...(report.approvals ?? []), approval];
          approvalStatements.push(args.approval);
          if (approval.breakGlass) report.breakGlass = { principal: approval.principal, reason: approval.breakGlass.reason };
        }
        if (!approvalsSuffice(report.approvals ?? [], policy!)) return report;
        report.confirmedBy = report.approvals?.length ? report.approvals.map((a) => a.principal).join(', ') : 'unsigned (no approval required)';
      } else {
        report.confirmedBy = args.confirmedBy ?? 'unknown';
      }
      confirmed = true;
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
        if (signedApprovals && policy) {
          const approval = args.approval;
          if (!approval) {
            if (policy.approvalsRequired > 0) {
              throw new Error(`a restore into ${target} needs ${policy.approvalsRequired} signed approval(s) from principals other than the requester: confirm through the API with an approver's credential (the API signs approvals with approvals.signingKey)`);
            }
          } else {
            const statement = approval.statement as Partial<SignedStatement['statement']> | undefined;
            if (statement?.kind !== 'restore-approval' || typeof statement.principal !== 'string') throw new Error('the approval is not a signed restore-approval');
            if (statement.workflowId !== info.workflowId || statement.restoreId !== restoreId) throw new Error(`the approval is for restore ${String(statement.restoreId)}, not for this one (${restoreId})`);
            if (statement.backupId !== args.backupId || statement.lossReportDigest !== args.lossReportDigest) throw new Error('the approval signs another backup id or loss report digest than the confirmation gives');
            const rejection = approvalRejection(statement as RestoreApproval, requester, report.approvals ?? [], policy);
            if (rejection) throw new Error(rejection);
          }
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
  const { quick, transfer, undoing, timeouts } = (policies = await configuredActivities(nonRetryableErrorTypes));

  /** Announces an event on the worker's webhook; a failure is reported, never fatal. */
  async function announce(event: RestoreEvent['event'], call: (e: RestoreEvent) => Promise<{ configured: boolean; delivered: boolean; attempts: number; error?: string }>) {
    const body: RestoreEvent = {
      event,
      workflowId: info.workflowId,
      deployment: input.targetDeployment ?? input.deployment,
      target,
      backupId: report.backup!.backupId,
      ...(report.requestedBy ? { requestedBy: report.requestedBy } : {}),
      approvalsRequired: policy!.approvalsRequired,
      lossReportDigest: report.lossReportDigest!,
      confirm: `vaultpam-backup restore confirm ${info.workflowId} --backup ${report.backup!.backupId}`,
      ...(report.breakGlass ? { approvedBy: report.breakGlass.principal, reason: report.breakGlass.reason } : {}),
    };
    try {
      const result = await call(body);
      if (!result.configured) return;
      (report.notifications ??= []).push({ event, delivered: result.delivered, attempts: result.attempts, ...(result.error ? { error: result.error } : {}) });
      if (!result.delivered) log.warn(`the webhook did not take the ${event} event`, { error: result.error });
    } catch (err) {
      const error = explainFailure(err, { timeouts });
      log.warn(`the ${event} event could not be announced`, { error });
      (report.notifications ??= []).push({ event, delivered: false, attempts: 0, error });
    }
  }

  // Steps 1-3 change nothing: a failure there ends the restore as refused, with the reason in its report.
  const backup = await (async () => {
    try {
      return await prepare();
    } catch (err) {
      if (report.status === 'not-confirmed') await auditRestoreOutcome(input, report);
      if (report.status === 'not-confirmed') throw err;
      report.status = 'refused';
      report.error = explainFailure(err, { timeouts });
      upsertSearchAttributes([{ key: STATUS, value: 'refused' }]);
      await auditRestoreOutcome(input, report);
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
    if (signedApprovals) await authorize();

    // 0. The target deployment's lock, held to the end (through the wait for confirmation): no backup, other
    // restore or key rotation of it runs meanwhile; the safety snapshot runs under it.
    enter('lock');
    await auditRestoreRequested(input, report);
    held.lock = input.targetDeployment ?? input.deployment;
    await takeDeploymentLock(held.lock, 'restore');

    // 1. Preflight: pin the backup (retention keeps it while this runs), then resolve and verify it.
    enter('preflight');
    if (!input.backupId === !input.at) {
      throw ApplicationFailure.create({ type: 'RestoreInputInvalid', nonRetryable: true, message: 'give either a backup id or a time (--at), not both' });
    }
    let backupId = input.backupId;
    // patched: a restore to a moment begun before point-in-time protection was restored from replays without it.
    if (input.at && patched('point-in-time-restore')) {
      const source = await quick.restoreSourceAt({ deployment: input.deployment, at: input.at });
      if (source.kind === 'point-in-time') {
        // The moment becomes a committed backup of its own (database recovered to it, the recordings checkpoint and
        // connector export in force then), so everything below treats it as any backup.
        enter('backup-moment');
        const momentInput: MomentBackupInput = {
          deployment: input.deployment,
          at: input.at,
          ...(requester ? { requestedBy: requester } : {}),
          reason: `restore ${restoreId} to ${input.at}`,
          underParentLock: held.lock === input.deployment,
        };
        const made = await executeChild(momentBackupWorkflow, {
          workflowId: `moment-${restoreId}`,
          args: [momentInput],
          typedSearchAttributes: [
            { key: DEPLOYMENT, value: input.deployment },
            { key: OPERATION, value: 'backup' },
          ],
          staticSummary: `Backup of ${input.deployment} as of ${input.at}, for restore ${restoreId}`,
        });
        report.moment = {
          at: made.at,
          backupId: made.backupId,
          baseId: made.baseId,
          segments: made.segments,
          checkpointId: made.selection.checkpoint.checkpointId,
          checkpointCoveredAt: made.selection.checkpoint.coveredAt,
          exportId: made.selection.connectors.exportId,
          exportedAt: made.selection.connectors.exportedAt,
        };
        backupId = made.backupId;
        enter('preflight');
      }
    }
    const pinned = await pinBackup(input.deployment, 'restore', backupId ? { backupId } : { at: input.at! });
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
    const loss = await quick.computeLoss({ target, since: backup.recordingsPoint, ...(backup.databasePoint ? { databaseSince: backup.databasePoint } : {}), backup: { rowCounts: backup.rowCounts, ...(backup.recordings ? { recordings: backup.recordings } : {}) } });
    report.lossReport = loss.report;
    report.lossReportDigest = loss.digest;
    if (!confirmed) {
      report.status = 'awaiting-confirmation';
      enter('awaiting-confirmation');
      upsertSearchAttributes([{ key: STATUS, value: 'awaiting-confirmation' }]);
      if (signedApprovals) await announce('restore.awaiting-approval', quick.notifyRestore);
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
    await auditRestoreConfirmed(input, report);
    report.status = 'running';
    upsertSearchAttributes([{ key: STATUS, value: 'running' }]);
    if (signedApprovals && report.breakGlass) {
      log.warn('restore approved by break-glass', { principal: report.breakGlass.principal, reason: report.breakGlass.reason });
      await announce('restore.break-glass', quick.announceBreakGlass);
    }
    if (signedApprovals && policy!.approvalsRequired > 0) {
      // Defence in depth: every signature and the distinct principals verified again, before anything is stopped.
      enter('authorize');
      await quick.verifyApprovals({ target, ...(input.request ? { request: input.request } : {}), requestExpected, approvals: approvalStatements, expected: approvalExpected() });
    }

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

  /** Who asks, and whether this target lets it go ahead as asked: refused here, before the lock and any change. */
  async function authorize() {
    enter('authorize');
    policy = await quick.restorePolicy({ target });
    report.approvalsRequired = policy.approvalsRequired;
    if (confirmed && policy.approvalsRequired > 0) {
      throw ApplicationFailure.create({
        type: 'RestoreNotApproved',
        nonRetryable: true,
        message: `pre-confirmed restores are only for staging drills: a restore into ${target} needs ${policy.approvalsRequired} approval(s) from principals other than the requester; start it without confirmed and have it approved`,
      });
    }
    if (input.request) {
      requester = (await quick.verifyRestoreRequest({ request: input.request, expected: requestExpected })).principal;
      report.requestedBy = requester;
    } else if (policy.approvalsRequired > 0) {
      throw ApplicationFailure.create({
        type: 'RestoreNotApproved',
        nonRetryable: true,
        message: `a restore into ${target} needs a signed request: start it with vaultpam-backup restore or through the API (they sign it with approvals.signingKey), not straight through Temporal`,
      });
    }
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
    await auditRestoreOutcome(input, report);
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
          const done = await step.run();
          const note = (done as { note?: string } | undefined)?.note;
          report.rollback!.push({ step: step.name, ok: true, ...(note ? { note } : {}) });
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
    await auditRestoreOutcome(input, report);
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
