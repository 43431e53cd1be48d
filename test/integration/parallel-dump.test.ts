// The database dump split by table on the real stack: parts written and listed in the manifest, a restore that loads
// them in parallel to identical content, a worker killed mid-dump whose retry keeps the stored parts, and a
// single-archive backup still restored.
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readManifest } from '../../src/catalog/catalog';
import { databaseParts } from '../../src/catalog/database-parts';
import type { Manifest } from '../../src/catalog/manifest';
import { parseConfig } from '../../src/config/load';
import type { Config, ConfigInput } from '../../src/config/schema';
import { unwrapKey } from '../../src/crypto';
import { backupResult, startBackup } from '../../src/operations/backup';
import { startApprovedRestore } from '../support/approved-restore';
import { createDatabase, dropDatabase, tableChecksums, tableRowCounts, withClient } from '../../src/postgres';
import { createDependencies } from '../../src/runtime/dependencies';
import { backupPrefix } from '../../src/storage';
import type { RestoreReport } from '../../workflows/restore-types';
import type { DumpCheckpoint } from '../../activities/dump';
import { restoreBackupDatabase } from '../../activities/database-restore';
import { verifyChecksums } from '../../activities/verify';
import { restoreFixture, TABLES, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { until as untilValue } from '../support/until';

/** This file's waits: 90_000 ms at most, probing every 50 ms. */
const until = <T>(probe: () => Promise<T | undefined>, what: string) => untilValue(probe, what, 90_000, 50);

const BIG = ['public.big_a', 'public.big_b'];
const ALL_TABLES = [...TABLES, ...BIG];

function withSettings(base: Config, parallelDump: { jobs: number; minTableBytes: number }, timeouts: Partial<ConfigInput['timeouts']> = {}): Config {
  return parseConfig({ ...base, backup: { ...base.backup, parallelDump }, timeouts: { ...base.timeouts, ...timeouts } } as ConfigInput);
}

/** Pids of running pg_dump processes whose command line names `table`. */
function pgDumpsOf(table: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (args[0]?.endsWith('pg_dump') && args.some((a) => a === `--table="public"."${table}"`)) pids.push(Number(entry));
  }
  return pids;
}

describe('parallel dump and restore', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 20, auditEntries: 200, recordings: 5, recordingBytes: 4_000 });
    const { postgres } = f.config.deployment;
    // Two tables far above the test's minTableBytes, with an index, a foreign key and TOASTed values, so the restore's
    // post-data pass has work and a part whose rows were loaded before the constraint is checked against it.
    await withClient(postgres, f.deps.postgresPassword('production'), async (c) => {
      await c.query('CREATE TABLE big_a (id int PRIMARY KEY, label text NOT NULL, body text)');
      await c.query('CREATE TABLE big_b (id bigserial PRIMARY KEY, a_id int NOT NULL REFERENCES big_a(id), note text)');
      await c.query(`INSERT INTO big_a SELECT g, 'row ' || g, CASE WHEN g % 500 = 0 THEN repeat(md5(g::text), 400) ELSE md5(g::text) END FROM generate_series(1, 150000) g`);
      await c.query(`INSERT INTO big_b (a_id, note) SELECT 1 + g % 150000, md5((g * 7)::text) || md5(g::text) FROM generate_series(1, 50000) g`);
      await c.query('CREATE INDEX big_b_a_id ON big_b (a_id)');
      // Vacuumed now, so no autovacuum of these tables assigns a transaction id while the crash test runs: its retry
      // keeps the stored archives only if nothing in the cluster was written since the first attempt's snapshot.
      await c.query('VACUUM (ANALYZE) big_a, big_b');
    });
  }, 180_000);
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await h?.close();
    await f?.destroy();
  });

  const password = () => f.deps.postgresPassword('production');
  const live = () => f.config.deployment.postgres;

  /** The backup's database restored into a scratch database: per-table checksums and the index definitions. */
  async function restoredContent(config: Config, manifest: Manifest, tables: string[]) {
    const deps = createDependencies(config);
    const scratch = `${live().database}_check`;
    await dropDatabase(live(), password(), scratch, { ifExists: true, force: true });
    await createDatabase(live(), password(), scratch);
    try {
      await restoreBackupDatabase({
        location: deps.locations()[0]!,
        artifacts: manifest.artifacts,
        dataKey: unwrapKey(manifest.encryption.dataKey, deps.keyRing()),
        config: live(),
        password: password(),
        database: scratch,
        jobs: 2,
      });
      return { checksums: await tableChecksums(live(), password(), scratch, tables), indexes: await indexes(scratch) };
    } finally {
      await dropDatabase(live(), password(), scratch, { ifExists: true, force: true });
    }
  }

  async function indexes(database: string): Promise<string[]> {
    return withClient(
      live(),
      password(),
      async (c) =>
        (await c.query<{ d: string }>(`SELECT indexdef AS d FROM pg_indexes WHERE schemaname = 'public' UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1`)).rows.map((r) => r.d),
      { database },
    );
  }

  it('a worker killed in the middle of the dump: the retry keeps the stored parts, redoes the rest, loses none', async () => {
    const config = withSettings(f.config, { jobs: 2, minTableBytes: 1024 * 1024 }, { heartbeat: '5 seconds' });
    const reference = await tableChecksums(live(), password(), live().database, ALL_TABLES);
    const first = await startWorkerProcess({ taskQueue: h.taskQueue, config, workflowBundlePath: inject('workflowBundlePath'), identity: 'dump-crash-first' });
    workers.push(first);
    const handle = await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'dump crash' });

    // The smaller table (big_b) is dumped last: freeze its pg_dump, so the dump is caught with two of its three archives stored.
    const frozen = await until(async () => pgDumpsOf('big_b')[0], 'the pg_dump of big_b');
    process.kill(frozen, 'SIGSTOP');
    const checkpoint = await until(async () => {
      const { raw } = await handle.describe();
      const pending = (raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'dump');
      const payload = pending?.heartbeatDetails?.payloads?.[0];
      const details = payload ? h.client.options.loadedDataConverter.payloadConverter.fromPayload<{ checkpoint?: DumpCheckpoint }>(payload) : undefined;
      const stored = details?.checkpoint?.stored ?? {};
      return stored.db && stored['db:public.big_a'] ? details!.checkpoint : undefined;
    }, 'a checkpoint naming the main archive and big_a');
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    process.kill(frozen, 'SIGKILL');
    expect(Object.keys(checkpoint.stored).sort()).toEqual(['db', 'db:public.big_a']);

    const second = await startWorkerProcess({ taskQueue: h.taskQueue, config, workflowBundlePath: inject('workflowBundlePath'), identity: 'dump-crash-second' });
    workers.push(second);
    const result = await backupResult(handle);
    // Its settings must not take the next test's tasks from the shared queue.
    await second.stop();
    const deps = createDependencies(config);
    const manifest = (await readManifest(deps.locations()[0]!, config.deployment.name, result.backupId))!;

    // Kept or dumped again, never a mix of two points in time: the stored archives are kept together (the same
    // stored bytes; a rewrite encrypts under a new nonce prefix) or not at all. They must be kept when nothing in the
    // cluster was written since the killed attempt's snapshot (the machine's other databases may write meanwhile).
    const kept = ['db', 'db:public.big_a'].filter((name) => manifest.artifacts[name]!.sha256 === checkpoint.stored[name]!.sha256);
    expect([0, 2]).toContain(kept.length);
    const visibilityNow = await withClient(live(), password(), async (c) => (await c.query<{ v: string }>('SELECT txid_current_snapshot()::text AS v')).rows[0]!.v);
    if (visibilityNow === checkpoint.visibility) {
      expect(manifest.artifacts.db).toEqual(checkpoint.stored.db);
      expect(manifest.artifacts['db:public.big_a']).toEqual(checkpoint.stored['db:public.big_a']);
    }
    console.info(`dump crash: ${kept.length ? 'the retry kept the 2 stored archives' : 'the cluster was written meanwhile: the retry dumped everything again'} (snapshot ${checkpoint.visibility}, now ${visibilityNow})`);
    const parts = databaseParts(manifest.artifacts);
    expect(parts.map((p) => p.table).sort()).toEqual(BIG);
    // No stray or duplicate archive beside the manifest's.
    const stored: string[] = [];
    for await (const item of deps.locations()[0]!.list(backupPrefix(config.deployment.name, result.backupId))) if (/db[.\w-]*\.dump\.enc$/.test(item.key)) stored.push(item.key);
    expect(stored.sort()).toEqual([manifest.artifacts.db.key, ...parts.map((p) => p.artifact.key)].sort());
    for (const location of deps.locations()) await verifyChecksums(location, manifest.artifacts);

    const restored = await restoredContent(config, manifest, ALL_TABLES);
    expect(restored.checksums).toEqual(reference);
    expect(restored.indexes).toEqual(await indexes(live().database));
  }, 400_000);

  it('writes the large tables as parts of their own, and a restore brings back identical content', async () => {
    const config = withSettings(f.config, { jobs: 2, minTableBytes: 1024 * 1024 });
    const before = { counts: await tableRowCounts(live(), password(), live().database, ALL_TABLES), checksums: await tableChecksums(live(), password(), live().database, ALL_TABLES), indexes: await indexes(live().database) };
    const backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'parallel dump', deep: true })), {}, config)).backupId;

    const deps = createDependencies(config);
    const manifest = (await readManifest(deps.locations()[0]!, config.deployment.name, backupId))!;
    expect(manifest.format).toBe(3);
    const parts = databaseParts(manifest.artifacts);
    expect(parts.map((p) => p.table).sort()).toEqual(BIG);
    expect(new Set(parts.map((p) => p.artifact.key)).size).toBe(2);
    // The main archive holds the schema and the small tables: far less than the parts.
    expect(manifest.artifacts.db.plaintextBytes).toBeLessThan(Math.min(...parts.map((p) => p.artifact.plaintextBytes)));
    expect(manifest.verify.level).toBe('deep');
    for (const location of deps.locations()) await verifyChecksums(location, manifest.artifacts);

    // Through the restore workflow after the big tables were damaged: everything back, indexes and constraints too.
    await withClient(live(), password(), async (c) => {
      await c.query('DELETE FROM big_b WHERE id % 3 = 0');
      await c.query(`UPDATE big_a SET label = 'changed' WHERE id < 100`);
    });
    await h.withWorker(
      async () => {
        const handle = await startApprovedRestore(h.client, config, { backupId, reason: 'parallel restore', taskQueue: h.taskQueue });
        const report = (await handle.result()) as RestoreReport;
        expect(report.status).toBe('completed');
      },
      {},
      config,
    );
    const after = { counts: await tableRowCounts(live(), password(), live().database, ALL_TABLES), checksums: await tableChecksums(live(), password(), live().database, ALL_TABLES), indexes: await indexes(live().database) };
    // The smoke test launched one session after the restore: its audit entry, session and recording are new.
    const { sessions: _s, audit_log: _a, ...countsAfter } = after.counts;
    const { sessions: _s2, audit_log: _a2, ...countsBefore } = before.counts;
    expect(countsAfter).toEqual(countsBefore);
    for (const table of ALL_TABLES.filter((t) => t !== 'sessions' && t !== 'audit_log')) expect(after.checksums[table], table).toBe(before.checksums[table]);
    expect(after.counts['public.big_b']).toBe(50000);
    expect(after.indexes).toEqual(before.indexes);
    expect(after.indexes.some((d) => d.includes('big_b_a_id'))).toBe(true);
  }, 400_000);

  it('a single-archive backup (no table above minTableBytes) is written as before and still restores', async () => {
    const config = withSettings(f.config, { jobs: 2, minTableBytes: 1024 * 1024 * 1024 });
    const reference = await tableChecksums(live(), password(), live().database, ALL_TABLES);
    const backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'single archive' })), {}, config)).backupId;
    const deps = createDependencies(config);
    const manifest = (await readManifest(deps.locations()[0]!, config.deployment.name, backupId))!;
    expect(manifest.format).toBe(2);
    expect(Object.keys(manifest.artifacts).sort()).toEqual(['connectors', 'db', 'recordingsIndex']);
    const restored = await restoredContent(config, manifest, ALL_TABLES);
    expect(restored.checksums).toEqual(reference);
  }, 300_000);
});
