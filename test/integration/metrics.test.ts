// Metrics on the real stack: /metrics on the API after a real backup (recovery point per location, growing with the
// injected clock while no backup runs; the last check read from a location) and the worker's activity metrics.
import { inject, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app';
import { backupResult, startBackup } from '../../src/operations/backup';
import { runVerify } from '../../src/operations/verify';
import { createActivityMetrics, serveMetrics } from '../../src/metrics/activity-metrics';
import { lastCheckKey } from '../../src/metrics/last-check';
import { createDependencies } from '../../src/runtime/dependencies';
import { createWorker } from '../../src/temporal/worker';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { apiCaller, authenticatorFor } from '../support/api-callers';

const scraper = apiCaller('metrics-scraper', ['viewer']);

/** The samples of one metric in Prometheus text: labels text -> value. */
function samples(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) found.set(m[1] ?? '', Number(m[2]));
  }
  return found;
}

describe('metrics', () => {
  let h: TemporalHarness;
  let app: ReturnType<typeof buildApi>;
  let offsetMs = 0;
  const scrape = async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics', headers: scraper.headers });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    return res.body;
  };

  beforeAll(async () => {
    h = await temporalHarness(isolatedConfig());
    // A clock the test moves; a long cache, as in production: ages are computed at each scrape from the cached reading.
    app = buildApi({ config: h.config, client: h.client, authenticator: authenticatorFor(scraper), taskQueue: h.taskQueue, now: () => new Date(Date.now() + offsetMs), metricsCacheMs: 60_000 });
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('shows each location\'s recovery point after a backup, growing while no backup runs; the worker counts its activities', async () => {
    const deployment = h.config.deployment.name;
    const empty = await scrape();
    expect(empty).toContain('# TYPE vaultpam_backup_newest_verified_age_seconds gauge');
    expect(samples(empty, 'vaultpam_backup_newest_verified_age_seconds').size).toBe(0);
    expect(samples(empty, 'vaultpam_location_readable').size).toBe(2);
    expect(await app.inject({ method: 'GET', url: '/metrics' }).then((r) => r.statusCode)).toBe(401);

    // A real worker with activity metrics, its registry served as the worker command serves it.
    const metrics = createActivityMetrics();
    const { worker, connection } = await createWorker({
      config: h.config,
      deps: createDependencies(h.config),
      taskQueue: h.taskQueue,
      workflowBundlePath: inject('workflowBundlePath'),
      options: { shutdownGraceTime: '2 seconds' },
      metrics,
    });
    const served = await serveMetrics(metrics.registry, '127.0.0.1', 0);
    let backupId = '';
    try {
      await worker.runUntil(async () => {
        backupId = (await backupResult(await startBackup(h.client, h.config, { taskQueue: h.taskQueue, reason: 'metrics' }))).backupId;
        // A verify of a backup that does not exist fails in an activity: a failure by step.
        await expect(runVerify(h.client, h.config, '20200101T000000Z-abcdef', false, h.taskQueue)).rejects.toThrow();
      });
    } finally {
      await connection.close();
    }
    const workerText = await (await fetch(served.url)).text();
    await served.close();
    const attempts = samples(workerText, 'vaultpam_activity_attempts_total');
    expect(attempts.get('{activity="dump"}')).toBeGreaterThanOrEqual(1);
    expect(samples(workerText, 'vaultpam_activity_duration_seconds_count').get('{activity="dump",outcome="completed"}')).toBeGreaterThanOrEqual(1);
    expect(samples(workerText, 'vaultpam_activity_failures_total').get('{activity="pinBackup"}')).toBeGreaterThanOrEqual(1);
    expect(samples(workerText, 'vaultpam_activity_failures_total').get('{activity="dump"}')).toBeUndefined();

    // The first scrape after the backup: the cached empty reading is refreshed once the cache expires, so a new API.
    await app.close();
    app = buildApi({ config: h.config, client: h.client, authenticator: authenticatorFor(scraper), taskQueue: h.taskQueue, now: () => new Date(Date.now() + offsetMs), metricsCacheMs: 60_000 });
    const after = await scrape();
    const ages = samples(after, 'vaultpam_backup_newest_verified_age_seconds');
    expect([...ages.keys()].sort()).toEqual([`{deployment="${deployment}",location="primary"}`, `{deployment="${deployment}",location="secondary"}`]);
    for (const age of ages.values()) {
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThan(600);
    }
    const restorable = samples(after, 'vaultpam_backup_newest_restorable_moment_age_seconds').get(`{deployment="${deployment}"}`)!;
    expect(restorable).toBeLessThan(600);
    expect(samples(after, 'vaultpam_backups_committed').get(`{deployment="${deployment}",location="primary"}`)).toBe(1);
    expect(samples(after, 'vaultpam_backup_newest_bytes').get(`{deployment="${deployment}",part="database"}`)).toBeGreaterThan(0);
    expect(samples(after, 'vaultpam_backup_newest_duration_seconds').get(`{deployment="${deployment}"}`)).toBeGreaterThan(0);
    expect(samples(after, 'vaultpam_check_last_ok').size).toBe(0);

    // 30 hours later by the injected clock, no backup since: every age grows by 30 h (from the same cached reading).
    offsetMs = 30 * 3_600_000;
    const later = await scrape();
    for (const [labels, age] of samples(later, 'vaultpam_backup_newest_verified_age_seconds')) {
      expect(age - ages.get(labels)!).toBeGreaterThanOrEqual(30 * 3600);
      expect(age - ages.get(labels)!).toBeLessThan(30 * 3600 + 120);
    }
    expect(samples(later, 'vaultpam_backup_newest_restorable_moment_age_seconds').get(`{deployment="${deployment}"}`)!).toBeGreaterThan(24 * 3600);

    // A check result written into one location shows once the reading is refreshed.
    const primary = createDependencies(h.config).locations().find((l) => l.name === 'primary')!;
    await primary.put(lastCheckKey(deployment), Buffer.from(JSON.stringify({ ok: false, finishedAt: new Date().toISOString(), remainingCount: 2, problemCount: 3, repairedCount: 1 })));
    await app.close();
    app = buildApi({ config: h.config, client: h.client, authenticator: authenticatorFor(scraper), taskQueue: h.taskQueue, now: () => new Date(Date.now() + offsetMs), metricsCacheMs: 60_000 });
    const checked = await scrape();
    expect(samples(checked, 'vaultpam_check_last_ok')).toEqual(new Map([[`{deployment="${deployment}",location="primary"}`, 0]]));
    expect(samples(checked, 'vaultpam_check_last_problems').get(`{deployment="${deployment}",location="primary"}`)).toBe(2);
    expect(backupId).toMatch(/^\d{8}T/);
  });
});
