// The worker's Prometheus metrics: each activity it runs, timed and counted by outcome, through an activity
// interceptor; served on worker.metricsPort when configured.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context as ActivityContext } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The activity whose completion counts one break-glass restore (vaultpam_restore_break_glass_total). */
export const BREAK_GLASS_ACTIVITY = 'announceBreakGlass';

export interface ActivityMetrics {
  registry: Registry;
  /** Give it to WorkerOptions.interceptors.activity. */
  interceptor: ActivityInterceptorsFactory;
}

/**
 * One registry per worker process. An attempt that throws counts as a failure of its activity (Temporal may retry
 * it: a failure here is an attempt that failed, which is what shows a flaky step); a cancelled one counts apart.
 */
export function createActivityMetrics(): ActivityMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vaultpam_worker_' });
  const duration = new Histogram({
    name: 'vaultpam_activity_duration_seconds',
    help: 'Duration of one activity attempt on this worker, by activity and outcome (completed, failed, cancelled)',
    labelNames: ['activity', 'outcome'],
    // From quick calls (tens of ms) to transfers of hours.
    buckets: [0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'vaultpam_activity_failures_total',
    help: 'Activity attempts on this worker that failed (Temporal retries what policy allows), by activity: the steps that fail',
    labelNames: ['activity'],
    registers: [registry],
  });
  const started = new Counter({
    name: 'vaultpam_activity_attempts_total',
    help: 'Activity attempts this worker started, by activity',
    labelNames: ['activity'],
    registers: [registry],
  });
  const breakGlass = new Counter({
    name: 'vaultpam_restore_break_glass_total',
    help: 'Restores this worker let proceed on one break-glass approval instead of the required approvals (alert on any increase)',
    registers: [registry],
  });
  const interceptor: ActivityInterceptorsFactory = (ctx: ActivityContext) => ({
    inbound: {
      async execute(input, next) {
        const activity = ctx.info.activityType;
        started.inc({ activity });
        const stop = duration.startTimer({ activity });
        try {
          const result = await next(input);
          stop({ outcome: 'completed' });
          if (activity === BREAK_GLASS_ACTIVITY) breakGlass.inc();
          return result;
        } catch (err) {
          const cancelled = err instanceof CancelledFailure;
          stop({ outcome: cancelled ? 'cancelled' : 'failed' });
          if (!cancelled) failures.inc({ activity });
          throw err;
        }
      },
    },
  });
  return { registry, interceptor };
}

/** Serves `GET /metrics` from the registry (anything else is 404); resolves once listening. */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
