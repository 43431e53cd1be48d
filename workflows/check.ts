// The repository check (on the model of restic's): every manifest in every location, its artifacts, the blobs its
// index names, orphans; optionally every blob (or a rotating slice) read whole; optionally repaired from a good copy.
import { log, patched, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { PROBLEMS_KEPT, describeReadData, type BackupCheckResult, type CheckInput, type CheckProblem, type CheckReport, type OrphanCheckResult, type PointsCheckResult } from './check-types';
import { auditPrincipal, recordAuditQuietly } from './audit-recorder';
import { pinBackup, unpinBackups } from './backup-pins';
import { releaseDeploymentLock, takeDeploymentLock } from './deployment-lock-holder';
import { STATUS, STEP } from './search-attributes';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 3 } });
const reading = proxyActivities<Activities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 3 },
});

function failedCheck(location: string, backupId: string | undefined, err: unknown): CheckProblem {
  const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
  return { location, kind: 'check-failed', detail: `the check could not run: ${cause}`, ...(backupId ? { backupId } : {}) };
}

/**
 * A check that repairs writes into the repository: it takes the deployment's lock, so no backup, prune, restore or
 * rotation runs meanwhile. A check that only reads pins every backup it checks, so retention keeps them until it ends.
 */
export async function checkWorkflow(input: CheckInput): Promise<CheckReport> {
  if (input.repair) await takeDeploymentLock(input.deployment, 'check');
  const pinned: string[] = [];
  try {
    return await checkSteps(input, pinned);
  } finally {
    await unpinBackups(input.deployment, pinned);
    if (input.repair) await releaseDeploymentLock(input.deployment);
  }
}

async function checkSteps(input: CheckInput, pinned: string[]): Promise<CheckReport> {
  const startedAt = new Date(workflowInfo().startTime).toISOString();
  upsertSearchAttributes([{ key: STATUS, value: 'running' }, { key: STEP, value: 'list' }]);
  const targets = await quick.listCheckTargets({ deployment: input.deployment });
  if (!input.repair) {
    for (const backupId of targets.backupIds) {
      try {
        pinned.push(await pinBackup(input.deployment, 'check', { backupId }));
      } catch (err) {
        // Removed since it was listed: its checks will say so ("removed"); nothing to keep.
        log.info('a backup went before it could be pinned', { backupId, error: (err as Error).message });
      }
    }
  }
  const extraProblems: CheckProblem[] = targets.unavailable.map((u) => ({ location: u.location, kind: 'location-unavailable', detail: u.detail }));

  // One activity per (location, backup): each retried and resumed on its own; locations run side by side, backups in
  // order, so each backup's shared blobs were checked (and repaired) by its predecessor's activity first.
  upsertSearchAttributes([{ key: STEP, value: 'backups' }]);
  const perBackup: BackupCheckResult[] = [];
  await Promise.all(
    targets.locations.map(async (location) => {
      for (const [i, backupId] of targets.backupIds.entries()) {
        try {
          perBackup.push(
            await reading.checkBackupAt({
              deployment: input.deployment,
              backupId,
              location,
              ...(i > 0 ? { previousBackupId: targets.backupIds[i - 1] } : {}),
              ...(i + 1 < targets.backupIds.length ? { nextBackupId: targets.backupIds[i + 1] } : {}),
              ...(input.readData ? { readData: input.readData } : {}),
              ...(input.repair ? { repair: true } : {}),
            }),
          );
        } catch (err) {
          extraProblems.push(failedCheck(location, backupId, err));
        }
      }
    }),
  );

  // The point-in-time protection's checkpoints and exports after the backups: a checkpoint's blobs shared with a backup
  // were checked (and repaired) by that backup's activity first. One activity per (location, kind), not per id: there
  // are hundreds of them in a window, and each resumes from its heartbeat.
  const perPoints: PointsCheckResult[] = [];
  if (patched('check-point-in-time')) {
    upsertSearchAttributes([{ key: STEP, value: 'point-in-time' }]);
    await Promise.all(
      targets.locations.map(async (location) => {
        for (const kind of ['checkpoint', 'connector-export'] as const) {
          try {
            perPoints.push(
              await reading.checkPointsAt({
                deployment: input.deployment,
                location,
                kind,
                backupIds: targets.backupIds,
                ...(input.readData ? { readData: input.readData } : {}),
                ...(input.repair ? { repair: true } : {}),
              }),
            );
          } catch (err) {
            const failed = failedCheck(location, undefined, err);
            extraProblems.push({ ...failed, detail: `${kind === 'checkpoint' ? 'recordings checkpoints' : 'connector exports'}: ${failed.detail}` });
          }
        }
      }),
    );
  }

  upsertSearchAttributes([{ key: STEP, value: 'orphans' }]);
  const orphans: OrphanCheckResult[] = [];
  await Promise.all(
    targets.locations.map(async (location) => {
      try {
        orphans.push(await reading.findOrphans({ deployment: input.deployment, location, backupIds: targets.backupIds }));
      } catch (err) {
        extraProblems.push(failedCheck(location, undefined, err));
      }
    }),
  );

  const present = perBackup.filter((r) => r.manifest !== 'removed');
  const problems = [...extraProblems, ...present.flatMap((r) => r.problems), ...perPoints.flatMap((r) => r.problems)];
  // Problems that remain come first: they are what an operator must act on.
  problems.sort((a, b) => Number(a.repair?.outcome === 'repaired') - Number(b.repair?.outcome === 'repaired'));
  const problemCount = extraProblems.length + [...present, ...perPoints].reduce((n, r) => n + r.problemCount, 0);
  const repairedCount = [...present, ...perPoints].reduce((n, r) => n + r.repairedCount, 0);
  const sumPoints = (field: 'checked' | 'notHeld' | 'artifactsChecked' | 'blobsChecked' | 'blobsShared' | 'blobsRead' | 'bytesRead') => perPoints.reduce((n, r) => n + r[field], 0);
  const idsOf = (kind: PointsCheckResult['kind']) => Math.max(0, ...perPoints.filter((r) => r.kind === kind).map((r) => r.ids));
  const report: CheckReport = {
    checkId: workflowInfo().workflowId,
    deployment: input.deployment,
    startedAt,
    finishedAt: new Date().toISOString(),
    readData: describeReadData(input.readData),
    repair: input.repair ?? false,
    ok: problemCount === repairedCount,
    backups: new Set(present.map((r) => r.backupId)).size,
    locations: targets.locations,
    manifests: {
      authenticated: present.filter((r) => r.manifest === 'authenticated').length,
      unauthenticated: present.filter((r) => r.manifest === 'unauthenticated').length,
    },
    blobsChecked: present.reduce((n, r) => n + r.blobsChecked, 0),
    blobsRead: present.reduce((n, r) => n + r.blobsRead, 0),
    bytesRead: present.reduce((n, r) => n + r.bytesRead, 0),
    problemCount,
    repairedCount,
    remainingCount: problemCount - repairedCount,
    problems: problems.slice(0, PROBLEMS_KEPT * 2),
    orphans: orphans
      .sort((a, b) => (a.location < b.location ? -1 : 1))
      .map((o) => ({ location: o.location, count: o.orphanCount, sample: o.orphans, missingCount: o.missingCount, missingSample: o.missing, ...(o.skipped ? { skipped: o.skipped } : {}) })),
    ...(input.scheduled && input.readData && input.readData !== 'all' ? { scheduledSlice: input.readData } : {}),
    ...(perPoints.length
      ? {
          pointInTime: {
            checkpoints: idsOf('checkpoint'),
            connectorExports: idsOf('connector-export'),
            copiesChecked: sumPoints('checked'),
            copiesNotHeld: sumPoints('notHeld'),
            artifactsChecked: sumPoints('artifactsChecked'),
            blobsChecked: sumPoints('blobsChecked'),
            blobsShared: sumPoints('blobsShared'),
            blobsRead: sumPoints('blobsRead'),
            bytesRead: sumPoints('bytesRead'),
          },
        }
      : {}),
  };
  upsertSearchAttributes([{ key: STEP, value: 'record' }]);
  await quick.recordCheckResult({ deployment: input.deployment, report });
  await recordAuditQuietly(input.deployment, 'check.completed', auditPrincipal(input.requestedBy, input.scheduled), {}, {
    ok: report.ok,
    readData: report.readData,
    repair: report.repair,
    backups: report.backups,
    ...(report.pointInTime ? { checkpoints: report.pointInTime.checkpoints, connectorExports: report.pointInTime.connectorExports } : {}),
    problems: report.problemCount,
    repaired: report.repairedCount,
  });
  upsertSearchAttributes([{ key: STEP, value: 'done' }, { key: STATUS, value: report.ok ? 'clean' : 'problems' }]);
  return report;
}
