// The worker's configured activity timeouts, asked for first by every workflow (workflows cannot read configuration).
import type { ActivityTimeouts } from '../src/config/activity-timeouts';
import type { Dependencies } from '../src/runtime/dependencies';

export function createTimeoutActivities(deps: Dependencies) {
  return {
    async activityTimeouts(): Promise<ActivityTimeouts> {
      const t = deps.config.timeouts;
      return {
        heartbeatMs: t.heartbeat,
        undoHeartbeatMs: t.undoHeartbeat,
        quickCallMs: t.quickCall,
        transferMs: t.transfer,
        quickAttempts: t.quickAttempts,
        transferAttempts: t.transferAttempts,
        undoAttempts: t.undoAttempts,
      };
    },
  };
}
