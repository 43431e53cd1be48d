// Activity timeouts and retry limits as the worker's configuration sets them: defaults, duration text, no Node built-ins
// (workflows read the same shape from the worker and format it in their failure messages).
import type { TimeoutsConfig } from './schema';

/** The worker's answer to `activityTimeouts()`: every duration in milliseconds. Small, and no secrets. */
export interface ActivityTimeouts {
  /** Heartbeat timeout of transfers (dump, copies, verify, restore): silence longer than this restarts the attempt. */
  heartbeatMs: number;
  /** Heartbeat timeout of undo steps (rollback, compensation). */
  undoHeartbeatMs: number;
  /** Start-to-close timeout of quick calls (control plane, bookkeeping, preflight checks). */
  quickCallMs: number;
  /** Start-to-close timeout of transfers and undo steps. */
  transferMs: number;
  /** Attempts of a quick call before the workflow sees its failure. */
  quickAttempts: number;
  /** Attempts of a transfer before the workflow sees its failure. */
  transferAttempts: number;
  /** Attempts of an undo step: more, since a rollback that gives up leaves a deployment half restored. */
  undoAttempts: number;
}

/** The configuration key of each field, for messages that tell an operator what to tune. */
export const TIMEOUT_SETTINGS: Record<keyof ActivityTimeouts, string> = {
  heartbeatMs: 'timeouts.heartbeat',
  undoHeartbeatMs: 'timeouts.undoHeartbeat',
  quickCallMs: 'timeouts.quickCall',
  transferMs: 'timeouts.transfer',
  quickAttempts: 'timeouts.quickAttempts',
  transferAttempts: 'timeouts.transferAttempts',
  undoAttempts: 'timeouts.undoAttempts',
};

export const DEFAULT_ACTIVITY_TIMEOUTS: Readonly<ActivityTimeouts> = Object.freeze({
  heartbeatMs: 30_000,
  undoHeartbeatMs: 60_000,
  quickCallMs: 3 * 60_000,
  transferMs: 12 * 3_600_000,
  quickAttempts: 5,
  transferAttempts: 10,
  undoAttempts: 30,
});

const UNIT_MS: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
};

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i;

/**
 * Milliseconds from a duration written as a number of milliseconds or as text ("30 seconds", "30s", "2 minutes",
 * "12h"); undefined when the text is not a duration.
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  const match = DURATION.exec(value);
  if (!match) return /^\s*\d+\s*$/.test(value) ? Number(value) : undefined;
  const unit = UNIT_MS[match[2]!.toLowerCase()];
  return unit === undefined ? undefined : Number(match[1]) * unit;
}

/** "30 s", "3 min", "12 h", "1.5 s": the shortest exact reading of a duration for a message. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000} min`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  return `${ms} ms`;
}

/** The configuration's `timeouts` section (already in milliseconds) as the worker answers it. */
export function activityTimeoutsOf(t: TimeoutsConfig): ActivityTimeouts {
  return {
    heartbeatMs: t.heartbeat,
    undoHeartbeatMs: t.undoHeartbeat,
    quickCallMs: t.quickCall,
    transferMs: t.transfer,
    quickAttempts: t.quickAttempts,
    transferAttempts: t.transferAttempts,
    undoAttempts: t.undoAttempts,
  };
}
