// The message an operator needs from a Temporal failure: the innermost cause (the activity's own error), not its
// wrappers; a timed-out activity, whose innermost cause says only "activity Heartbeat timeout", is explained.
import { ActivityFailure, TimeoutFailure } from '@temporalio/common';
import type { ActivityTimeouts } from '../config/activity-timeouts';
import { explainFailure } from '../errors/failure-explanation';

/** `timeouts`: the workers' configured ones when known (the caller's configuration), for the figures in an explanation. */
export function rootCauseMessage(err: unknown, timeouts?: ActivityTimeouts): string {
  let current: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  while (current instanceof Error && current.cause instanceof Error) {
    if (current instanceof ActivityFailure && current.cause instanceof TimeoutFailure) return explainFailure(current, timeouts ? { timeouts } : {});
    current = current.cause;
    message = (current as Error).message;
  }
  return message;
}
