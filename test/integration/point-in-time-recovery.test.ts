// Point-in-time protection of production's cluster on the real stack: base backup and WAL streamed by the protection
// workflow, recovery to a moment in a scratch instance, a segment lost at one location or both, a worker SIGKILLed mid-stream.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import pg from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_SCRATCH_ROOT, type ScratchInstance } from '../../activities/recover-to-moment';
import { scratchPaths } from '../../src/postgres/scratch-instance';
import { databaseRecoveryPoint, pointInTimeWindow } from '../../src/catalog/point-in-time-window';
import { createCatalogMetrics } from '../../src/metrics/catalog-metrics';
import { checkReplicationAccess } from '../../src/postgres/replication-access';
import { readWalMark } from '../../src/catalog/wal-mark';
import { parseLsn, parseSegmentName, segmentName, segmentOf } from '../../src/postgres/wal-position';
import { protectionStatus } from '../../src/operations/protect';
import { createDependencies } from '../../src/runtime/dependencies';
import { baseManifestKey, baseTarKey, parseWalKey, walPrefix, walSegmentKey, type BackupLocation } from '../../src/storage';
import { listBaseManifests, sealBaseManifest } from '../../src/catalog/base-manifest';
import { prunePointInTime } from '../../src/catalog/point-in-time-retention';
import { readAll } from '../../src/catalog/artifacts';
import type { PreflightReport } from '../../workflows/preflight-types';
import type { protectWorkflow } from '../../workflows/protect';
import { PROTECTION_MARKS_QUERY, protectWorkflowId, type ProtectionState } from '../../workflows/protect-types';
import { isolatedConfig } from '../support/backup-fixture';
import { stackEnv } from '../support/stack-env';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { dropReplicationSlot, removeWalSpool } from '../support/replication-slot';
import { until } from '../support/until';
import { checkpointAt } from '../../activities/point-in-time';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const suffix = randomBytes(4).toString('hex');
const slot = `pitr_test_${suffix}`;
const testDatabase = `pitr_test_${suffix}`;
const config = isolatedConfig((base) => ({ deployment: { ...base.deployment, pointInTime: { enabled: true, slot, partialUploadSeconds: 1 } } }));
const deps = createDependencies(config);
const deployment = config.deployment.name;
const env = stackEnv();
const admin = new pg.Pool({ ...env.pgProduction, database: 'postgres', max: 2 });
const testDb = new pg.Pool({ ...env.pgProduction, database: testDatabase, max: 2 });
// An idle pooled connection the server ends (the test database is dropped WITH (FORCE) at the end) is no test failure.
for (const pool of [admin, testDb]) pool.on('error', () => undefined);

/** Every message down a failure's cause chain (workflow failure, activity failure, application failure). */
function failureChain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) parts.push(e.message ?? '');
  return parts.join(' <- ');
}

async function serverNow(): Promise<string> {
  return (await testDb.query<{ t: Date }>('SELECT clock_timestamp() AS t')).rows[0]!.t.toISOString();
}

async function write(label: string): Promise<bigint> {
  await testDb.query('INSERT INTO events (label) VALUES ($1)', [label]);
  return parseLsn((await testDb.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
}

/** Waits until every location's mark has passed `lsn` (the stream stored the WAL that holds it). */
async function markPast(lsn: bigint, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const marks = await Promise.all(deps.locations().map((l) => readWalMark(l, deployment, deps.keyRing())));
    if (marks.every((m) => m && parseLsn(m.lsn) >= lsn)) return;
    if (Date.now() > deadline) throw new Error(`the WAL marks did not pass ${lsn.toString(16)} within ${timeoutMs} ms: ${JSON.stringify(marks.map((m) => m?.lsn))}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('point-in-time protection of the production cluster', () => {
  let h: TemporalHarness;
  const workers: WorkerProcess[] = [];
  let protection: WorkflowHandle<typeof protectWorkflow>;
  const scratchIds: string[] = [];

  const worker = async (identity: string) => {
    const w = await startWorkerProcess({ taskQueue: h.taskQueue, config, workflowBundlePath: inject('workflowBundlePath'), identity });
    workers.push(w);
    return w;
  };

  async function recover(at: string): Promise<ScratchInstance> {
    const scratchId = `pitr-${suffix}-${scratchIds.length}`;
    scratchIds.push(scratchId);
    return h.client.workflow.execute('recoverToMomentWorkflow', { taskQueue: h.taskQueue, workflowId: `recover-${scratchId}`, args: [{ target: 'production', at, scratchId, recoveryTimeoutSeconds: 120 }] });
  }

  async function labelsIn(instance: ScratchInstance): Promise<string[]> {
    const client = new pg.Client({ host: instance.host, port: instance.port, user: env.pgProduction.user, password: env.pgProduction.password, database: testDatabase });
    await client.connect();
    try {
      return (await client.query<{ label: string }>('SELECT label FROM events ORDER BY id')).rows.map((r) => r.label);
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    await admin.query(`CREATE DATABASE ${testDatabase}`);
    await testDb.query('CREATE TABLE events (id serial PRIMARY KEY, label text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    await testDb.query('CREATE TABLE ballast (b text NOT NULL)');
    h = await temporalHarness(config);
    await worker('first');
    protection = await h.client.workflow.start('protectWorkflow', {
      taskQueue: h.taskQueue,
      workflowId: protectWorkflowId(deployment),
      args: [{ target: 'production', deployment, baseBackupEveryHours: 1000, sliceSeconds: 30, partialUploadSeconds: 1, heartbeatSeconds: 5 }],
    });
    await markPast(await write('seed'), 90_000);
  }, 150_000);

  afterAll(async () => {
    await protection?.terminate('test over').catch(() => undefined);
    for (const scratchId of scratchIds) {
      await h.client.workflow.execute('discardScratchInstanceWorkflow', { taskQueue: h.taskQueue, workflowId: `discard-${scratchId}`, args: [{ scratchId }] });
      expect(existsSync(scratchPaths(DEFAULT_SCRATCH_ROOT, scratchId).dir)).toBe(false);
    }
    for (const w of workers) await w.stop();
    await h?.close();
    await dropReplicationSlot(admin, slot);
    await testDb.end();
    await admin.query(`DROP DATABASE IF EXISTS ${testDatabase} WITH (FORCE)`);
    await admin.end();
    removeWalSpool(config, deployment, slot);
  }, 120_000);

  it('recovers writes made a few seconds before a moment, and none made after it', async () => {
    await write('before-1');
    await admin.query('SELECT pg_switch_wal()');
    await write('before-2');
    await new Promise((r) => setTimeout(r, 1500));
    const moment = await serverNow();
    await new Promise((r) => setTimeout(r, 1500));
    await write('after');
    // After the moment, about 7 segments of WAL (100 MB of rows elsewhere): more than the feed fetches ahead of the
    // segment PostgreSQL asks for, so replay stopping at the moment leaves them unfetched.
    await testDb.query("INSERT INTO ballast SELECT repeat(md5(g::text), 32) FROM generate_series(1, 100000) g");
    await markPast(await write('after-ballast'), 120_000);

    const state = await protection.query<ProtectionState>(PROTECTION_MARKS_QUERY);
    expect(state.lastBaseId).toBeDefined();
    // Beside the first slice, the bucket and the inventory: a committed recordings checkpoint and a first connector export.
    const objects = await until(async () => {
      const s = await protection.query<ProtectionState>(PROTECTION_MARKS_QUERY);
      return s.recordingsCheckpoint && s.connectorExport ? s : undefined;
    }, 'the first recordings checkpoint and connector export of the protection workflow');
    expect(objects.checkpointProblem).toBeUndefined();
    expect((await checkpointAt(deps, deployment, new Date())).id).toBe(objects.recordingsCheckpoint!.id);
    // What `protect status` shows: the workflow runs, and its window reaches past the moment at every location.
    const status = await protectionStatus(h.client, config, deps.locations(), deps.keyRing());
    expect(status.running).toBe(true);
    for (const location of status.window.locations) expect(location.window!.to >= moment, location.location).toBe(true);
    const window = await pointInTimeWindow(deps.locations(), deployment, deps.keyRing());
    expect(window.gaps).toEqual([]);
    expect(window.window!.from <= moment && moment <= window.window!.to).toBe(true);

    const instance = await recover(moment);
    expect(await labelsIn(instance)).toEqual(['seed', 'before-1', 'before-2']);
    // Fetched: the segments up to the moment and a few ahead, not the ballast's up to the mark.
    const base = window.holdings.bases.find((b) => b.baseId === instance.baseId)!;
    const mark = window.holdings.mark!;
    const toMark = segmentOf(parseLsn(mark.lsn), mark.timeline, mark.walSegmentBytes).number - segmentOf(parseLsn(base.startLsn), base.timeline, base.walSegmentBytes).number + 1n;
    expect(BigInt(instance.segments)).toBeLessThan(toMark - 2n);

    // The recovery point: the newest moment both locations can recover to on their own, and its age in the metrics.
    const point = (await databaseRecoveryPoint(deps.locations(), deployment, deps.keyRing(), new Date()))!;
    expect(point.locations.sort()).toEqual(deps.locations().map((l) => l.name).sort());
    expect(point.to >= moment).toBe(true);
    const metrics = createCatalogMetrics({ deployment, locations: () => deps.locations(), keyRing: () => deps.keyRing(), now: () => new Date(Date.parse(point.to) + 42_000) });
    // The stream goes on meanwhile (a mark a second), so the gauge's own reading may be a few seconds newer.
    const age = Number((await metrics.getSingleMetric('vaultpam_database_recovery_point_seconds')!.get()).values[0]!.value);
    expect(age).toBeGreaterThan(30);
    expect(age).toBeLessThanOrEqual(42);
  }, 240_000);

  it('keeps the newest mark under a minute old (here: seconds) under a steady write load', async () => {
    const ages: number[] = [];
    const until = Date.now() + 8000;
    let n = 0;
    while (Date.now() < until) {
      await write(`load-${n++}`);
      if (n % 10 === 0) {
        const [mark, now] = await Promise.all([readWalMark(deps.locations()[0]!, deployment, deps.keyRing()), serverNow()]);
        ages.push(Date.parse(now) - Date.parse(mark!.time));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(ages.length).toBeGreaterThan(5);
    // Partials every second (partialUploadSeconds: 1): the recovery point is the upload period plus the upload.
    expect(Math.max(...ages)).toBeLessThan(15_000);
    await testDb.query("DELETE FROM events WHERE label LIKE 'load-%'");
  }, 60_000);

  it('streams on without a gap after the worker is SIGKILLed mid-slice', async () => {
    workers[0]!.child.kill('SIGKILL');
    await workers[0]!.exited;
    await write('while-down-1');
    await admin.query('SELECT pg_switch_wal()');
    await write('while-down-2');
    await worker('second');
    await new Promise((r) => setTimeout(r, 1000));
    const moment = await serverNow();
    await markPast(await write('after-restart'), 90_000);

    const window = await pointInTimeWindow(deps.locations(), deployment, deps.keyRing());
    expect(window.gaps).toEqual([]);
    for (const location of window.locations) expect(location.gaps, location.location).toEqual([]);
    const instance = await recover(moment);
    expect(await labelsIn(instance)).toEqual(['seed', 'before-1', 'before-2', 'after', 'after-ballast', 'while-down-1', 'while-down-2']);
  }, 150_000);

  it('streams again what a lost spool held: worker and receiver killed, the spool gone, another worker resumes without a gap', async () => {
    const running = workers[workers.length - 1]!;
    running.child.kill('SIGKILL');
    await running.exited;
    // The receiver outlives its worker: it flushes whole segments into the spool, and the slot moves past them.
    await write('lost-1');
    await admin.query('SELECT pg_switch_wal()');
    await write('lost-2');
    await admin.query('SELECT pg_switch_wal()');
    const last = await write('lost-3');
    await until(async () => {
      const { rows } = await admin.query<{ lsn: string | null }>('SELECT restart_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      return rows[0]?.lsn && parseLsn(rows[0].lsn) >= last ? true : undefined;
    }, 'the orphaned receiver flushing past the lost writes');
    // Then the machine goes, and its disk with it.
    expect(spawnSync('pkill', ['-KILL', '-f', '--', `--slot ${slot}`]).status, 'the orphaned pg_receivewal killed').toBe(0);
    removeWalSpool(config, deployment, slot);

    await worker('third');
    await new Promise((r) => setTimeout(r, 1000));
    const moment = await serverNow();
    await markPast(await write('after-lost-spool'), 90_000);
    const window = await pointInTimeWindow(deps.locations(), deployment, deps.keyRing());
    expect(window.gaps).toEqual([]);
    const instance = await recover(moment);
    expect(await labelsIn(instance)).toEqual(expect.arrayContaining(['lost-1', 'lost-2', 'lost-3']));
  }, 150_000);

  it('recovers from the other location when a segment is lost at one, and names the gap when it is lost at both', async () => {
    const window = await pointInTimeWindow(deps.locations(), deployment, deps.keyRing());
    const [primary, secondary] = deps.locations();
    // A complete segment between the base and the mark (pg_switch_wal above made some).
    const base = window.holdings.bases[0]!;
    const baseEnd = segmentOf(parseLsn(base.stopLsn), base.timeline, base.walSegmentBytes).number;
    const lost = [...window.holdings.segments].sort().find((s) => parseSegmentName(s, base.walSegmentBytes).number > baseEnd)!;
    expect(lost).toBeDefined();
    await primary!.delete([walSegmentKey(deployment, lost)]);
    const moment = await serverNow();
    await markPast(await write('after-loss'));

    const oneLost = await pointInTimeWindow(deps.locations(), deployment, deps.keyRing());
    expect(oneLost.locations.find((l) => l.location === primary!.name)?.gaps).toContain(lost);
    expect(oneLost.gaps).toEqual([]);
    const instance = await recover(moment);
    expect(instance.fallbacks).toBeGreaterThanOrEqual(1);
    expect(await labelsIn(instance)).toContain('after-restart');

    await secondary!.delete([walSegmentKey(deployment, lost)]);
    const bothLost = await pointInTimeWindow(deps.locations(), deployment, deps.keyRing());
    expect(bothLost.gaps).toContain(lost);
    const refusal = await recover(await serverNow()).then(
      () => 'recovered',
      (err: unknown) => failureChain(err),
    );
    expect(refusal).toMatch(/outside what point-in-time protection/);
    expect(refusal).toContain(lost);
    // Preflight refuses too, naming the segment.
    const preflight: PreflightReport = await h.client.workflow.execute('preflightWorkflow', { taskQueue: h.taskQueue, workflowId: `preflight-${deployment}-gap`, args: [{ target: 'production', deployment, allowNoBackup: true }] });
    const check = preflight.checks.find((c) => c.check === 'point-in-time');
    expect(check).toMatchObject({ ok: false, facts: { missingSegments: 1 } });
    expect(check!.summary).toContain(lost);
    expect(preflight.ok).toBe(false);
  }, 150_000);

  it('preflight accepts the production cluster for streaming, and names the fix for a role without REPLICATION', async () => {
    const pgConfig = config.deployment.postgres;
    const accepted = await checkReplicationAccess(pgConfig, deps.postgresPassword('production'));
    expect(accepted).toMatchObject({ ok: true, problems: [], facts: { walLevel: 'replica' } });
    expect(accepted.facts.timeline).toBeGreaterThanOrEqual(1);
    const role = `pitr_plain_${suffix}`;
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'plain-${suffix}'`);
    try {
      const refused = await checkReplicationAccess({ ...pgConfig, user: role }, `plain-${suffix}`);
      expect(refused.ok).toBe(false);
      expect(refused.problems.join('; ')).toMatch(new RegExp(`ALTER ROLE ${role} REPLICATION`));
      expect(refused.problems.join('; ')).not.toContain(`plain-${suffix}`);
    } finally {
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
    }
  });

  it('prunes bases past the window and the WAL no kept base needs, and keeps the newest base before the window', async () => {
    const [real] = (await pointInTimeWindow(deps.locations(), deployment, deps.keyRing())).holdings.bases;
    const bytes = real!.walSegmentBytes;
    const day = 86_400_000;
    // An older base (ten days before the real one) and WAL objects older than any base, at every location.
    const old = sealBaseManifest(
      {
        ...(({ authentication: _a, ...rest }) => rest)(real!),
        baseId: 'older-base',
        startLsn: '0/1000028',
        stopLsn: '0/1000100',
        startTime: new Date(Date.parse(real!.startTime) - 10 * day).toISOString(),
        stopTime: new Date(Date.parse(real!.stopTime) - 10 * day).toISOString(),
        tar: { ...real!.tar, key: baseTarKey(deployment, 'older-base') },
      },
      deps.keyRing(),
    );
    const someWal = walSegmentKey(deployment, [...(await pointInTimeWindow(deps.locations(), deployment, deps.keyRing())).holdings.segments].sort()[0]!);
    const walBody = await readAll(await deps.locations()[0]!.get(someWal));
    const plant = async (segmentNumber: bigint) => {
      for (const location of deps.locations()) await location.put(walSegmentKey(deployment, segmentName({ timeline: real!.timeline, number: segmentNumber }, bytes)), walBody);
    };
    for (const location of deps.locations()) {
      await location.put(baseTarKey(deployment, 'older-base'), Buffer.from('tar'));
      await location.put(baseManifestKey(deployment, 'older-base'), Buffer.from(JSON.stringify(old)));
    }
    await plant(0n);
    const walKeys = async (location: BackupLocation) => {
      const keys: string[] = [];
      for await (const item of location.list(walPrefix(deployment))) if (parseWalKey(deployment, item.key)) keys.push(item.key);
      return keys.sort();
    };

    // Inside the window's reach: the older base is the newest before the window's start, so it stays; only the WAL
    // before it goes (the planted segment 0).
    const soon = await prunePointInTime(deps.locations(), deployment, deps.keyRing(), 7, new Date(Date.parse(real!.stopTime) + 3_600_000));
    expect(soon).toMatchObject({ basesRemoved: [], basesKept: 2, walObjectsRemoved: deps.locations().length, walBefore: segmentName({ timeline: real!.timeline, number: 1n }, bytes) });

    // A month on, the real base is the newest before the window's start: the older base goes, manifest and tar, and so
    // does every WAL object before the real base's start, and nothing from it on.
    await plant(0n);
    const walBefore = segmentName(segmentOf(parseLsn(real!.startLsn), real!.timeline, bytes), bytes);
    const before = await Promise.all(deps.locations().map(walKeys));
    const later = await prunePointInTime(deps.locations(), deployment, deps.keyRing(), 7, new Date(Date.parse(real!.stopTime) + 30 * day));
    expect(later.basesRemoved).toEqual(['older-base']);
    expect(later.walBefore).toBe(walBefore);
    const after = await Promise.all(deps.locations().map(walKeys));
    // The stream still runs (a partial a second), so compare complete segments: every one from the kept base on stays.
    const segments = (keys: string[], from: boolean) => keys.filter((k) => parseWalKey(deployment, k)!.kind === 'segment' && parseWalKey(deployment, k)!.segment >= walBefore === from);
    deps.locations().forEach((_, i) => {
      expect(after[i]!.filter((k) => parseWalKey(deployment, k)!.segment < walBefore), 'WAL before the kept base').toEqual([]);
      expect(segments(after[i]!, true), 'segments from the kept base on').toEqual(expect.arrayContaining(segments(before[i]!, true)));
    });
    expect(later.walObjectsRemoved).toBe(before.flat().filter((k) => parseWalKey(deployment, k)!.segment < walBefore).length);
    for (const location of deps.locations()) {
      expect(await location.exists(baseTarKey(deployment, 'older-base'))).toBe(false);
      expect((await listBaseManifests(location, deployment, deps.keyRing())).map((b) => b.baseId)).toEqual([real!.baseId]);
    }
    // Run again: nothing more to remove.
    expect(await prunePointInTime(deps.locations(), deployment, deps.keyRing(), 7, new Date(Date.parse(real!.stopTime) + 30 * day))).toMatchObject({ basesRemoved: [], walObjectsRemoved: 0 });
  }, 60_000);
});
