// Preflight: check every service a backup touches and report what was found; changes nothing.
import { proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { createPreflightActivities } from '../activities/preflight';
import type { CheckResult, PreflightInput, PreflightReport } from './preflight-types';
import { STATUS, STEP } from './search-attributes';

const { checkPostgres, checkRecordings, checkControlPlane, checkLocations, checkRecoveryPoint } = proxyActivities<ReturnType<typeof createPreflightActivities>>({
  startToCloseTimeout: '60 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
});

export async function preflightWorkflow(input: PreflightInput & { deployment: string }): Promise<PreflightReport> {
  upsertSearchAttributes([{ key: STEP, value: 'checks' }, { key: STATUS, value: 'running' }]);
  const [postgres, recordings, controlPlane, locations, recoveryPoint] = await Promise.all([
    checkPostgres(input.target),
    checkRecordings(input.target),
    checkControlPlane(input.target),
    checkLocations(),
    checkRecoveryPoint(input.deployment),
  ]);
  const checks: CheckResult[] = [postgres, recordings, controlPlane, ...locations, recoveryPoint];
  const ok = checks.every((c) => c.ok);
  upsertSearchAttributes([{ key: STEP, value: 'done' }, { key: STATUS, value: ok ? 'passed' : 'failed' }]);
  return { deployment: input.deployment, target: input.target, ok, checkedAt: new Date(workflowInfo().startTime).toISOString(), checks };
}
