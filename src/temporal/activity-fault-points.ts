// Crash points around every activity (start, each heartbeat, end), for the crash matrix; inert unless a test names one.
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { FAULT_POINT_ENV, faultPoint } from '../runtime/fault-points';

/**
 * `activity:<type>:start`, `activity:<type>:heartbeat` (with `@N`, the N-th heartbeat) and `activity:<type>:end`
 * (the work is done and its result not yet reported: the retry meets every side effect already made). Nothing is
 * installed when VAULTPAM_FAULT_POINT is unset, so a production worker never pays for it.
 */
export function activityFaultPoints(): ActivityInterceptorsFactory[] {
  if (!process.env[FAULT_POINT_ENV]) return [];
  return [
    (ctx) => ({
      inbound: {
        async execute(input, next) {
          const name = `activity:${ctx.info.activityType}`;
          // The context forwards heartbeats to this function; wrapping it puts a crash point in every heartbeat.
          const context = ctx as unknown as { heartbeatFn: (details?: unknown) => void };
          const send = context.heartbeatFn;
          context.heartbeatFn = (details) => {
            faultPoint(`${name}:heartbeat`);
            send(details);
          };
          faultPoint(`${name}:start`);
          const result = await next(input);
          faultPoint(`${name}:end`);
          return result;
        },
      },
    }),
  ];
}
