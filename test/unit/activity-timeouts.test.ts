// The timeouts section of the configuration (defaults, durations, clear errors) and the explanation of a timed-out activity.
import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { localStackConfig } from '../../src/config/local-stack';
import { DEFAULT_ACTIVITY_TIMEOUTS, formatDuration, parseDuration } from '../../src/config/activity-timeouts';
import { explainFailure } from '../../src/errors/failure-explanation';
import { rootCauseMessage } from '../../src/operations/failure-message';

function configWith(timeouts: unknown) {
  return parseConfig({ ...localStackConfig(), timeouts });
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('timeouts configuration', () => {
  it('defaults to a 30 s heartbeat, 3 min quick calls and 12 h transfers', () => {
    const config = parseConfig(localStackConfig());
    expect(config.timeouts).toEqual({
      heartbeat: 30_000,
      undoHeartbeat: 60_000,
      quickCall: 180_000,
      transfer: 43_200_000,
      quickAttempts: 5,
      transferAttempts: 10,
      undoAttempts: 30,
    });
    expect(config.timeouts.heartbeat).toBe(DEFAULT_ACTIVITY_TIMEOUTS.heartbeatMs);
    expect(Object.isFrozen(config.timeouts)).toBe(true);
  });

  it('takes durations as text or milliseconds, and a parsed configuration parses again to the same values', () => {
    const config = configWith({ heartbeat: '4 seconds', undoHeartbeat: '10s', quickCall: 90_000, transfer: '2h', transferAttempts: 1 });
    expect(config.timeouts).toMatchObject({ heartbeat: 4000, undoHeartbeat: 10_000, quickCall: 90_000, transfer: 7_200_000, transferAttempts: 1, quickAttempts: 5 });
    expect(parseConfig(JSON.parse(JSON.stringify(config))).timeouts).toEqual(config.timeouts);
  });

  it('names the field and the fix for a bad value, and refuses unknown keys', () => {
    expect(errorOf(() => configWith({ heartbeat: 'thirty' }))).toMatch(/VPB_ERR_CONFIG_INVALID: .*timeouts\.heartbeat: "thirty" is not a duration: write milliseconds as a number, or text such as "30 seconds"/);
    expect(errorOf(() => configWith({ heartbeat: '10 fortnights' }))).toMatch(/timeouts\.heartbeat: "10 fortnights" is not a duration/);
    expect(errorOf(() => configWith({ quickCall: 10 }))).toMatch(/timeouts\.quickCall: 10 is too short: use at least 1000 ms/);
    expect(errorOf(() => configWith({ transferAttempts: 0 }))).toMatch(/timeouts\.transferAttempts: allow at least 1 attempt/);
    expect(errorOf(() => configWith({ undoAttempts: 2.5 }))).toMatch(/timeouts\.undoAttempts: give a whole number of attempts/);
    expect(errorOf(() => configWith({ heartbeat: '2 hours', transfer: '1 hour' }))).toMatch(/timeouts\.heartbeat: the heartbeat timeout \(7200000 ms\) must be shorter than timeouts\.transfer/);
    expect(errorOf(() => configWith({ heartbeatTimeout: '5s' }))).toMatch(/timeouts: .*heartbeatTimeout/);
  });

  it('reads and writes durations', () => {
    expect(parseDuration('1.5 minutes')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('42')).toBe(42);
    expect(parseDuration('soon')).toBeUndefined();
    expect(formatDuration(30_000)).toBe('30 s');
    expect(formatDuration(180_000)).toBe('3 min');
    expect(formatDuration(43_200_000)).toBe('12 h');
    expect(formatDuration(1500)).toBe('1.5 s');
  });
});

describe('explainFailure', () => {
  const timeouts = { ...DEFAULT_ACTIVITY_TIMEOUTS, heartbeatMs: 4000, transferAttempts: 1 };

  it('explains a heartbeat timeout: the activity, its last phase, the timeout and the setting to tune', () => {
    const timeout = new TimeoutFailure(
      'activity Heartbeat timeout',
      { phase: 'pg_restore: building indexes', bytes: 9_663_676_416, elapsedSeconds: 1804.2, silentSeconds: 612.4, attempt: 3 },
      TimeoutType.HEARTBEAT,
    );
    const failure = new ActivityFailure('Activity task timed out', 'restoreDatabase', '7', RetryState.MAXIMUM_ATTEMPTS_REACHED, 'worker-1', timeout);
    const message = explainFailure(failure, { timeouts });
    expect(message).toBe(
      'activity restoreDatabase sent no heartbeat for longer than 4 s (timeouts.heartbeat) on its last allowed attempt (timeouts.transferAttempts: 1); ' +
        'its last report was phase "pg_restore: building indexes" (9.0 GiB, 1804.2 s elapsed, silent for 612.4 s, attempt 3). ' +
        'A worker that died, was stopped or hung stops heartbeating: check that a worker is running and read its log. ' +
        "If the worker is alive and this phase is legitimately long, raise timeouts.heartbeat in the worker's configuration (now 4 s).",
    );
  });

  it('says so when the activity never reported, and names the undo setting for an undo step', () => {
    const failure = new ActivityFailure('x', 'swapBackDatabase', '9', RetryState.TIMEOUT, undefined, new TimeoutFailure(undefined, undefined, TimeoutType.HEARTBEAT));
    const message = explainFailure(failure, { timeouts, heartbeat: 'undoHeartbeatMs' });
    expect(message).toMatch(/^activity swapBackDatabase sent no heartbeat for longer than 1 min \(timeouts\.undoHeartbeat\) and its retries ran out of time; it never reported progress\./);
    expect(message).toMatch(/raise timeouts\.undoHeartbeat/);
  });

  it('names the start-to-close settings for a step that ran out of time', () => {
    const failure = new ActivityFailure('x', 'dump', '3', RetryState.MAXIMUM_ATTEMPTS_REACHED, undefined, new TimeoutFailure(undefined, { phase: 'pg_dump', bytes: 10 }, TimeoutType.START_TO_CLOSE));
    expect(explainFailure(failure, { timeouts })).toBe(
      'activity dump did not finish within its start-to-close timeout; its last report was phase "pg_dump" (10 B). ' +
        "Raise timeouts.transfer (transfers, now 12 h) or timeouts.quickCall (quick calls, now 3 min) in the worker's configuration if the work is legitimately that long.",
    );
  });

  it("passes an activity's own error through, and any other error's message", () => {
    const own = ApplicationFailure.create({ type: 'BackupCorrupt', message: 'the dump at s3://x: SHA-256 differs', nonRetryable: true });
    expect(explainFailure(new ActivityFailure('x', 'verifyBackup', '2', RetryState.NON_RETRYABLE_FAILURE, undefined, own))).toBe('the dump at s3://x: SHA-256 differs');
    expect(explainFailure(new Error('plain'))).toBe('plain');
    expect(explainFailure('text')).toBe('text');
  });

  it('is what a client reads from a workflow failure whose root cause is a timeout, with its own timeouts', () => {
    const timedOut = new ActivityFailure('x', 'dump', '3', RetryState.MAXIMUM_ATTEMPTS_REACHED, undefined, new TimeoutFailure('activity Heartbeat timeout', { phase: 'pg_dump' }, TimeoutType.HEARTBEAT));
    const workflowFailure = ApplicationFailure.create({ type: 'BackupFailed', message: 'backup failed at step "dump"', cause: timedOut });
    expect(rootCauseMessage(workflowFailure, timeouts)).toMatch(/^activity dump sent no heartbeat for longer than 4 s \(timeouts\.heartbeat\)/);
    const own = ApplicationFailure.create({ type: 'BackupCorrupt', message: 'checksum differs' });
    expect(rootCauseMessage(ApplicationFailure.create({ message: 'outer', cause: new ActivityFailure('x', 'verifyBackup', '1', RetryState.NON_RETRYABLE_FAILURE, undefined, own) }))).toBe('checksum differs');
  });
});
