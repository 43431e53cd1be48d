// What an operator reads when an activity fails: its own error, or for a timeout the activity, its last reported
// phase, the timeout that fired and the setting to tune. Workflow-safe: no Node built-ins, no I/O.
import { ActivityFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import { DEFAULT_ACTIVITY_TIMEOUTS, TIMEOUT_SETTINGS, formatDuration, type ActivityTimeouts } from '../config/activity-timeouts';

export interface ExplainOptions {
  /** The timeouts the activity ran under (the worker's answer); default: the built-in defaults. */
  timeouts?: ActivityTimeouts;
  /** Which heartbeat timeout applied: transfers' or undo steps'. @default 'heartbeatMs' */
  heartbeat?: 'heartbeatMs' | 'undoHeartbeatMs';
}

const MAX_DETAIL_CHARS = 300;

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** `phase "pg_restore: building indexes" (2.1 GiB, 340 s elapsed, silent for 12 s)` from an activity's heartbeat. */
export function describeHeartbeat(details: unknown): string | undefined {
  if (details === undefined || details === null) return undefined;
  if (typeof details !== 'object') return String(details).slice(0, MAX_DETAIL_CHARS);
  const record = details as Record<string, unknown>;
  const facts: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (key === 'phase') continue;
    if (typeof value !== 'number' && typeof value !== 'string' && typeof value !== 'boolean') continue;
    if (key === 'bytes' && typeof value === 'number') facts.push(formatBytes(value));
    else if (key === 'elapsedSeconds') facts.push(`${value} s elapsed`);
    else if (key === 'silentSeconds') facts.push(`silent for ${value} s`);
    else facts.push(`${key} ${value}`);
  }
  const phase = typeof record.phase === 'string' ? `phase "${record.phase}"` : 'progress';
  return `${phase}${facts.length ? ` (${facts.join(', ')})` : ''}`.slice(0, MAX_DETAIL_CHARS);
}

function attemptsNote(failure: ActivityFailure, setting: string, attempts: number): string {
  if (failure.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED) return ` on its last allowed attempt (${setting}: ${attempts})`;
  if (failure.retryState === RetryState.TIMEOUT) return ' and its retries ran out of time';
  return '';
}

/**
 * One message for a failed step. An activity's own error is passed through (it already says what is wrong and what
 * to do); a timeout, whose bare text is only "activity Heartbeat timeout", is explained.
 */
export function explainFailure(err: unknown, options: ExplainOptions = {}): string {
  if (!(err instanceof ActivityFailure)) return err instanceof Error ? err.message : String(err);
  const cause = err.cause;
  if (!(cause instanceof TimeoutFailure)) return cause ? cause.message : err.message;
  const timeouts = options.timeouts ?? DEFAULT_ACTIVITY_TIMEOUTS;
  const activity = `activity ${err.activityType}`;
  const lastReport = describeHeartbeat(cause.lastHeartbeatDetails);

  if (cause.timeoutType === TimeoutType.HEARTBEAT) {
    const field = options.heartbeat ?? 'heartbeatMs';
    const setting = TIMEOUT_SETTINGS[field];
    const limit = formatDuration(timeouts[field]);
    const attempts = field === 'heartbeatMs' ? attemptsNote(err, TIMEOUT_SETTINGS.transferAttempts, timeouts.transferAttempts) : attemptsNote(err, TIMEOUT_SETTINGS.undoAttempts, timeouts.undoAttempts);
    return (
      `${activity} sent no heartbeat for longer than ${limit} (${setting})${attempts}; ` +
      (lastReport ? `its last report was ${lastReport}. ` : 'it never reported progress. ') +
      `A worker that died, was stopped or hung stops heartbeating: check that a worker is running and read its log. ` +
      `If the worker is alive and this phase is legitimately long, raise ${setting} in the worker's configuration (now ${limit}).`
    );
  }
  if (cause.timeoutType === TimeoutType.START_TO_CLOSE || cause.timeoutType === TimeoutType.SCHEDULE_TO_CLOSE) {
    return (
      `${activity} did not finish within its start-to-close timeout` +
      (lastReport ? `; its last report was ${lastReport}` : '') +
      `. Raise ${TIMEOUT_SETTINGS.transferMs} (transfers, now ${formatDuration(timeouts.transferMs)}) or ${TIMEOUT_SETTINGS.quickCallMs} ` +
      `(quick calls, now ${formatDuration(timeouts.quickCallMs)}) in the worker's configuration if the work is legitimately that long.`
    );
  }
  return `${activity} was not picked up in time (${cause.timeoutType ?? 'timeout'}): check that a worker polls the task queue.`;
}
