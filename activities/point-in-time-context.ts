// What the point-in-time activities share: the deployment's protection settings, refused clearly when absent.
import { ApplicationFailure } from '@temporalio/activity';
import { databaseClock } from '../src/postgres/database-clock';
import type { TargetName } from '../src/config/load';
import type { DeploymentConfig, PointInTimeConfig } from '../src/config/schema';
import type { Dependencies } from '../src/runtime/dependencies';

export const POINT_IN_TIME_NOT_CONFIGURED = 'PointInTimeNotConfigured';
export const POINT_IN_TIME_OUTSIDE_WINDOW = 'PointInTimeOutsideWindow';
/** The moment is not covered because WAL is missing: retried by a caller that saw it covered (the stream may be closing the gap). */
export const POINT_IN_TIME_GAP = 'PointInTimeGap';

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

/**
 * The database server's clock for a checkpoint or an export (src/postgres/database-clock.ts); undefined when the
 * database cannot be read: the recordings and connectors are protected on their own then, placed by their own clock
 * (the manifest without `databaseAt` shows it).
 */
export async function databaseClockOf(deps: Dependencies, target: TargetName): Promise<string | undefined> {
  try {
    return await databaseClock(deps.deployment(target).postgres, deps.postgresPassword(target));
  } catch {
    return undefined;
  }
}
