// Retention of the point-in-time stream as an activity: bases past `pointInTime.windowDays` and the WAL no kept base needs.
import { Context } from '@temporalio/activity';
import { prunePointInTime, type PointInTimePruneResult } from '../src/catalog/point-in-time-retention';
import type { TargetName } from '../src/config/load';
import type { Dependencies } from '../src/runtime/dependencies';
import { pointInTimeOf } from './point-in-time-context';

export function createPrunePointInTimeActivities(deps: Dependencies) {
  return {
    /** Runs after each base backup: from then on, every moment of the window is still restorable, and nothing older. */
    async prunePointInTime(input: { target: TargetName }): Promise<PointInTimePruneResult> {
      const ctx = Context.current();
      const { deployment } = pointInTimeOf(deps, input.target);
      return prunePointInTime(deps.locations(), deployment.name, deps.keyRing(), deps.config.pointInTime.windowDays, deps.now(), (progress) => ctx.heartbeat(progress));
    },
  };
}
