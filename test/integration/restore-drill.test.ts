// The quarterly restore drill on the real stack: production's newest backup restored into a separate staging
// deployment, verified and smoke-tested with its RTO reported, while production itself is left exactly as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUARANTINE_PREFIX } from '../../activities/restore';
import { listBackups, readManifest } from '../../src/catalog/catalog';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { backupResult, startBackup } from '../../src/operations/backup';
import { restoreReport, startDrill, type DrillReport } from '../../src/operations/restore';
import { dropDatabase, withClient } from '../../src/postgres';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

/**
 * Tables the drill leaves row for row equal to production's: the smoke test writes sessions and audit_log, and the
 * connectors are re-imported through the admin API, whose JSON carries timestamps to the millisecond only (compared
 * through that export instead).
 */
const EQUAL_TO_PRODUCTION = ['organisations', 'users', 'resources', 'safes', 'credentials'];

describe('restore drill into a staging deployment', () => {
  let production: RestoreFixture;
  let staging: RestoreFixture;
  let config: Config;
  let h: TemporalHarness;
  let backupId: string;
  let rowCounts: Record<string, number>;

  /** Databases a full restore of staging sets aside (`<live>_pre_*`) or leaves half made (`<live>_r_*`). */
  async function stagingSideDatabases(): Promise<string[]> {
    const pg = staging.config.deployment.postgres;
    const rows = await withClient(
      pg,
      staging.deps.postgresPassword('production'),
      async (c) =>
        (await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1) OR starts_with(datname, $2) ORDER BY datname', [`${pg.database}_pre_`, `${pg.database}_r_`])).rows,
      { database: 'postgres' },
    );
    return rows.map((r) => r.datname);
  }

  beforeAll(async () => {
    [production, staging] = await Promise.all([restoreFixture(), restoreFixture()]);
    // Production's own isolated configuration, with the second instance as its staging deployment.
    config = parseConfig({ ...production.config, staging: staging.instance.deployment });
    h = await temporalHarness(config);
    await production.seed({ resources: 15, auditEntries: 300, recordings: 24, recordingBytes: 4_000 });
    // Staging holds other, older data: the drill must replace it, not merge into it.
    await staging.seed({ organisations: 1, resources: 4, auditEntries: 50, recordings: 5, recordingBytes: 2_000 });
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'before the drill' })))).backupId;
    rowCounts = (await readManifest(production.deps.locations()[0]!, config.deployment.name, backupId))!.postgres.rowCounts;
  }, 240_000);
  afterAll(async () => {
    // The staging database the drill set aside is this test's to drop; the instances drop their own.
    if (staging) {
      for (const name of await stagingSideDatabases().catch(() => [])) {
        await dropDatabase(staging.config.deployment.postgres, staging.deps.postgresPassword('production'), name, { ifExists: true, force: true }).catch(() => undefined);
      }
    }
    await h?.close();
    await Promise.all([production?.destroy(), staging?.destroy()]);
  });

  it('restores the newest backup into staging, verifies it, smoke-tests it, reports the RTO, and leaves production alone', async () => {
    const productionBefore = await production.fingerprint();
    const stagingBefore = await staging.fingerprint();
    const catalogBefore = (await listBackups(production.deps.locations(), config.deployment.name)).map((e) => e.backupId);
    const started = Date.now();
    const { drill, restore } = await h.withWorker(async () => {
      const handle = await startDrill(h.client, config, h.taskQueue);
      const drill = (await handle.result()) as DrillReport;
      return { drill, restore: await restoreReport(h.client, drill.restoreWorkflowId) };
    });
    console.info(`restore drill: ${((Date.now() - started) / 1000).toFixed(1)} s end to end, RTO ${drill.rtoMs} ms`);

    // The drill's report: the newest backup, verified, smoke-tested, with its RTO.
    expect(drill.backupId).toBe(backupId);
    expect(drill.rtoMs).toBeGreaterThan(0);
    expect(drill.verify!.found).toEqual(drill.verify!.expected);
    expect(drill.smokeTest!.sessionId).toBeTruthy();
    expect(restore.status).toBe('completed');
    expect(restore.target).toBe('staging');
    expect(restore.deployment).toBe(config.deployment.name);
    // A drill targets staging: no safety snapshot of it, and production's catalog gains no backup.
    expect(restore.safetySnapshotId).toBeUndefined();
    expect((await listBackups(production.deps.locations(), config.deployment.name)).map((e) => e.backupId)).toEqual(catalogBefore);

    // Staging holds the backup's rows, plus the smoke test's session and its audit entry, and the line saying it was restored.
    const stats = await staging.deps.controlPlane('production').stats();
    expect(stats).toEqual({
      resources: rowCounts.resources,
      safes: rowCounts.safes,
      credentials: rowCounts.credentials,
      connectors: rowCounts.connectors,
      sessions: rowCounts.sessions! + 1,
      audit_log: rowCounts.audit_log! + 2,
    });
    expect(restore.audit?.vaultpamLog?.recorded).toBe(true);
    const stagingAfter = await staging.fingerprint();
    for (const table of EQUAL_TO_PRODUCTION) expect(stagingAfter.checksums[table], table).toBe(productionBefore.checksums[table]);
    expect(stagingAfter.connectors).toEqual(productionBefore.connectors);
    // Its bucket: production's recordings (same ETags) and the smoke test's; staging's own moved to the quarantine.
    const live = stagingAfter.objects.filter((o) => !o.startsWith('.vaultpam-backup/'));
    const smokeRecording = live.filter((o) => !productionBefore.objects.includes(o));
    expect(smokeRecording).toHaveLength(1);
    expect(smokeRecording[0]).toContain(drill.smokeTest!.sessionId);
    expect(live.filter((o) => productionBefore.objects.includes(o))).toEqual(productionBefore.objects);
    const quarantined = stagingAfter.objects.filter((o) => o.startsWith(QUARANTINE_PREFIX)).map((o) => o.replace(/^\S*?\/(sessions\/)/, '$1'));
    expect(quarantined.sort()).toEqual(stagingBefore.objects.filter((o) => !o.startsWith('.vaultpam-backup/')).sort());

    // Production: not a row, object or connector changed, and it never stopped serving.
    expect(await production.fingerprint()).toEqual(productionBefore);
    expect((await production.deps.controlPlane('production').health()).status).toBe('ok');
    expect((await staging.deps.controlPlane('production').health()).status).toBe('ok');
  });
});
