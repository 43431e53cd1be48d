// What the point-in-time activities share: the deployment's protection settings, refused clearly when absent.
import { ApplicationFailure } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import type { DeploymentConfig, PointInTimeConfig } from '../src/config/schema';
import type { Dependencies } from '../src/runtime/dependencies';

export const POINT_IN_TIME_NOT_CONFIGURED = 'PointInTimeNotConfigured';
export const POINT_IN_TIME_OUTSIDE_WINDOW = 'PointInTimeOutsideWindow';

export function pointInTimeOf(deps: Dependencies, target: TargetName): { deployment: DeploymentConfig; pointInTime: PointInTimeConfig } {
  const deployment = deps.deployment(target);
  if (!deployment.pointInTime?.enabled) {
    throw ApplicationFailure.create({
      type: POINT_IN_TIME_NOT_CONFIGURED,
      message: `point-in-time protection is not enabled for deployment ${deployment.name}: set deployment.pointInTime.enabled to true (and give its cluster wal_level=replica and a replication entry in pg_hba.conf)`,
      nonRetryable: true,
    });
  }
  return { deployment, pointInTime: deployment.pointInTime };
}
