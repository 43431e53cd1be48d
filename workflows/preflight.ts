// Preflight: check every service a backup touches and report what was found; changes nothing.
import { patched, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { configuredActivities } from './activity-policies';
import type { CheckResult, PreflightInput, PreflightReport } from './preflight-types';
import { STATUS, STEP } from './search-attributes';

export async function preflightWorkflow(input: PreflightInput & { deployment: string }): Promise<PreflightReport> {
  upsertSearchAttributes([{ key: STEP, value: 'checks' }, { key: STATUS, value: 'running' }]);
  const { checkPostgres, checkRecordings, checkControlPlane, checkLocations, checkRecoveryPoint, checkPointInTime } = (await configuredActivities([])).quick;
  const [postgres, recordings, controlPlane, locations, recoveryPoint] = await Promise.all([
    checkPostgres(input.target),
    checkRecordings(input.target),
    checkControlPlane(input.target),
    checkLocations(),
    checkRecoveryPoint(input.deployment, { allowNoBackup: input.allowNoBackup ?? false }),
  ]);
  const checks: CheckResult[] = [postgres, recordings, controlPlane, ...locations, recoveryPoint];
  // patched: a preflight begun before the point-in-time check replays without it.
  if (patched('point-in-time-preflight')) {
    const pointInTime = await checkPointInTime(input.target);
    if (pointInTime) checks.push(pointInTime);
  }
  const ok = checks.every((c) => c.ok);
  upsertSearchAttributes([{ key: STEP, value: 'done' }, { key: STATUS, value: ok ? 'passed' : 'failed' }]);
  return { deployment: input.deployment, target: input.target, ok, checkedAt: new Date(workflowInfo().startTime).toISOString(), checks };
}
