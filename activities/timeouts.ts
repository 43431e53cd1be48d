// The worker's configured activity timeouts, asked for first by every workflow (workflows cannot read configuration).
import { activityTimeoutsOf, type ActivityTimeouts } from '../src/config/activity-timeouts';
import type { Dependencies } from '../src/runtime/dependencies';

export function createTimeoutActivities(deps: Dependencies) {
  return {
    async activityTimeouts(): Promise<ActivityTimeouts> {
      return activityTimeoutsOf(deps.config.timeouts);
    },
  };
}
