// Master-key rotation's activity: the rewrap of every data key, heartbeating per object; run under the deployment's lock.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { RotationListingError, rewrapDataKeys, type RotationResult } from '../src/catalog/rewrap-data-keys';
import { rewrapPointInTimeKeys, type PointInTimeRotationResult } from '../src/catalog/rewrap-point-in-time-keys';
import type { Dependencies } from '../src/runtime/dependencies';

export function createRotateKeyActivities(deps: Dependencies) {
  return {
    async rewrapDataKeys(input: { deployment: string }): Promise<RotationResult> {
      const ctx = Context.current();
      try {
        return await rewrapDataKeys(deps.locations(), input.deployment, deps.keyRing(), (detail) => ctx.heartbeat(detail));
      } catch (err) {
        if (err instanceof RotationListingError) {
          // Retried by the workflow's policy (an outage may pass); the last attempt's message names the location.
          throw ApplicationFailure.create({ type: 'LocationUnlisted', message: err.message });
        }
        throw err;
      }
    },

    /** WAL key epochs and base data keys under the active master key; a retry skips what is already current. */
    async rewrapPointInTimeKeys(input: { deployment: string }): Promise<PointInTimeRotationResult> {
      const ctx = Context.current();
      return rewrapPointInTimeKeys(deps.locations(), input.deployment, deps.keyRing(), (detail) => ctx.heartbeat(detail));
    },
  };
}
