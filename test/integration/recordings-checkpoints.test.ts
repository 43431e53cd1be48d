// Recordings checkpoints and connector exports on the real stack: a checkpoint holds exactly the bucket at its moment
// (additions, changes and deletions), shares unchanged blobs, costs no blob request when nothing changed, survives a
// crash without a committed half or a second copy; as-of selection picks the right checkpoint and export and refuses
// a moment out of range, naming it.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConnectorCheckpoint, readConnectorExport } from '../../activities/checkpoint-connectors';
import { CHECKPOINT_FAULT_POINTS, CHECKPOINT_INDEX, runRecordingsCheckpoint, type CheckpointRecordingsResult } from '../../activities/checkpoint-recordings';
import { checkpointAt, checkpointEntries, connectorExportAt } from '../../activities/point-in-time';
import { CHECKPOINT_KIND, CONNECTOR_EXPORT_KIND } from '../../src/catalog/checkpoint-manifest';
import { ownBlobOf, readBlobWhole } from '../../src/catalog/recording-blobs';
import { readAll } from '../../src/catalog/artifacts';
import { rewrapDataKeys } from '../../src/catalog/rewrap-data-keys';
import { parseConfig } from '../../src/config/load';
import { repoRoot } from '../../src/config/local-stack';
import type { Config } from '../../src/config/schema';
import { backupResult, startBackup } from '../../src/operations/backup';
import { checkResult, startCheck } from '../../src/operations/check';
import { MomentOutOfRangeError, POINT_DATA_KEY_FILE, listPointIds, listPoints, readPointManifest, recordingsRecoveryPoint } from '../../src/catalog/point-in-time-catalog';
import { createCatalogMetrics } from '../../src/metrics/catalog-metrics';
import { readRecordingsIndex, type IndexEntry } from '../../src/catalog/recordings-index';
import { unwrapKey, type WrappedKey } from '../../src/crypto';
import { createDependencies, type Dependencies } from '../../src/runtime/dependencies';
import { blobKey, blobsPrefix, type BackupLocation } from '../../src/storage';
import { POINT_MANIFEST, sweepMarkerKey } from '../../src/storage/layout';
import { runCheckpointProcess } from '../support/checkpoint-process';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

process.env.VAULTPAM_TEST_KEY_ROTATED = randomBytes(32).toString('hex');

/** A location that writes down every key it is asked about, so a test can say which requests a step made. */
function observed(location: BackupLocation, keys: string[]): BackupLocation {
  const note = (key: string) => keys.push(key);
  return {
    name: location.name,
    region: location.region,
    kind: location.kind,
    put: (key, body, size) => (note(key), location.put(key, body, size)),
    get: (key, range) => (note(key), location.get(key, range)),
    stat: (key) => (note(key), location.stat(key)),
    ...(location.readHead ? { readHead: (key: string, length: number) => (note(key), location.readHead!(key, length)) } : {}),
    exists: (key) => (note(key), location.exists(key)),
    list: (prefix) => (note(prefix), location.list(prefix)),
    delete: (ks) => (ks.forEach(note), location.delete(ks)),
    ensureReady: () => location.ensureReady(),
    describe: () => location.describe(),
  };
}

describe('recordings checkpoints and connector exports', () => {
  let f: RestoreFixture;
  let deployment: string;
  let bucket: string;

  beforeAll(async () => {
    f = await restoreFixture();
    deployment = f.config.deployment.name;
    bucket = f.config.deployment.recordings.bucket;
    await f.seed({ resources: 1, connectors: 2, auditEntries: 1, recordings: 6, recordingBytes: 2_000 });
    for (const location of f.deps.locations()) await location.ensureReady();
  }, 120_000);
  let h: TemporalHarness | undefined;
  afterAll(async () => {
    await h?.close();
    await f?.destroy();
  });

  const client = () => f.deps.recordingsClient('production');
  async function liveObjects(): Promise<Map<string, string>> {
    const live = new Map<string, string>();
    for await (const o of client().listObjectsV2(bucket, '', true) as AsyncIterable<{ name: string; etag: string }>) live.set(o.name, o.etag.replace(/"/g, ''));
    return live;
  }
  async function indexOf(deps: Dependencies, checkpointId: string, at = 0): Promise<IndexEntry[]> {
    const location = deps.locations()[at]!;
    const manifest = (await readPointManifest(location, CHECKPOINT_KIND, deployment, checkpointId, deps.keyRing()))!;
    const entries: IndexEntry[] = [];
    for await (const e of readRecordingsIndex(location, manifest.artifacts.recordingsIndex, unwrapKey(manifest.encryption.dataKey, deps.keyRing()))) entries.push(e);
    return entries;
  }
  async function blobCount(location: BackupLocation): Promise<number> {
    let n = 0;
    for await (const _ of location.list(blobsPrefix(deployment))) n += 1;
    return n;
  }

  /** The bucket's clock counts whole seconds: checkpoints a test tells apart by their moment are a second apart. */
  const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1_100));

  let first: CheckpointRecordingsResult;
  let second: CheckpointRecordingsResult;
  let third: CheckpointRecordingsResult;

  it('captures additions, changes and deletions, shares unchanged blobs, and costs no blob request when nothing changed', async () => {
    first = await runRecordingsCheckpoint(f.deps, { deployment });
    expect(first.objects).toBe(6);
    expect(first.copiedObjects).toBe(6);
    expect(first.locations).toEqual(f.deps.locations().map((l) => l.name));
    const firstIndex = await indexOf(f.deps, first.checkpointId);

    await nextSecond();
    // Between the two: one recording added, one changed (new content under the same key), one deleted.
    const [changed, deleted] = [firstIndex[1]!.key, firstIndex[4]!.key];
    await client().putObject(bucket, 'sessions/zz-added.cast', Buffer.from('added after the first checkpoint'));
    await client().putObject(bucket, changed, Buffer.from('changed after the first checkpoint'));
    await client().removeObject(bucket, deleted);
    const live = await liveObjects();
    await nextSecond();

    second = await runRecordingsCheckpoint(f.deps, { deployment });
    expect(second.coveredAt > first.coveredAt).toBe(true);
    const secondIndex = await indexOf(f.deps, second.checkpointId);
    // Exactly the new state: every live key with its ETag, in the bucket's order, nothing deleted.
    expect(new Map(secondIndex.map((e) => [e.key, e.etag]))).toEqual(live);
    expect(secondIndex.map((e) => e.key)).toEqual([...live.keys()]);
    expect(secondIndex.some((e) => e.key === deleted)).toBe(false);
    expect(second).toMatchObject({ objects: 6, copiedObjects: 2, reusedObjects: 4 });
    const firstBlobs = new Map(firstIndex.map((e) => [e.key, e.blob]));
    for (const e of secondIndex) {
      if (e.key === changed || e.key === 'sessions/zz-added.cast') expect([...firstBlobs.values()]).not.toContain(e.blob);
      else expect(e.blob, `${e.key} shares its blob`).toBe(firstBlobs.get(e.key));
    }
    // The checkpoint opens whole at every location alone (same index bytes everywhere).
    for (let i = 0; i < f.deps.locations().length; i++) expect(await indexOf(f.deps, second.checkpointId, i)).toEqual(secondIndex);

    // Nothing new: a listing and an index write; no request about any blob, at any location.
    const blobsBefore = await Promise.all(f.deps.locations().map(blobCount));
    await nextSecond();
    const requested: string[] = [];
    const watching = createDependencies(f.config, { locations: () => f.deps.locations().map((l) => observed(l, requested)) });
    third = await runRecordingsCheckpoint(watching, { deployment });
    expect(third).toMatchObject({ objects: 6, copiedObjects: 0, copiedBytes: 0, reusedObjects: 6 });
    expect(requested.filter((k) => k.startsWith(blobsPrefix(deployment)))).toEqual([]);
    expect(requested.filter((k) => k.endsWith(`/${CHECKPOINT_INDEX}`) || k.endsWith(`/${POINT_MANIFEST}`)).length).toBeLessThan(12);
    expect(await Promise.all(f.deps.locations().map(blobCount))).toEqual(blobsBefore);
    expect(await indexOf(f.deps, third.checkpointId)).toEqual(secondIndex);

    // The recovery point: the newest checkpoint present in two locations, in the metrics and in `status`.
    const rpo = await recordingsRecoveryPoint(f.deps.locations(), deployment, f.deps.keyRing(), new Date(new Date(third.coveredAt).getTime() + 42_000));
    expect(rpo).toMatchObject({ checkpointId: third.checkpointId, ageSeconds: 42 });
    const metrics = createCatalogMetrics({ deployment, locations: () => f.deps.locations(), keyRing: () => f.deps.keyRing(), now: () => new Date(new Date(third.coveredAt).getTime() + 42_000) });
    expect(await metrics.getSingleMetricAsString('vaultpam_recordings_recovery_point_seconds')).toContain(`vaultpam_recordings_recovery_point_seconds{deployment="${deployment}"} 42`);
    const configFile = join(tmpdir(), `vpb-status-${deployment}.json`);
    writeFileSync(configFile, JSON.stringify(f.config));
    const cli = spawnSync(process.execPath, ['bin/vaultpam-backup.mjs', '--config', configFile, 'status', '--json'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ deployment, recordings: { checkpointId: third.checkpointId, coveredAt: third.coveredAt }, connectors: null });
  });

  it('picks the checkpoint and the connector export in force at a moment, falls back per location, refuses a moment out of range', async () => {
    const at = (iso: string, ms = 0) => new Date(new Date(iso).getTime() + ms);
    // Checkpoints and exports are placed on the database's clock, read beside their own.
    const moment = (r: { databaseAt?: string }) => r.databaseAt!;
    for (const r of [first, second, third]) expect(Math.abs(Date.parse(moment(r)) - Date.parse(r.coveredAt))).toBeLessThan(2_000);
    expect((await checkpointAt(f.deps, deployment, at(moment(first)))).id).toBe(first.checkpointId);
    expect((await checkpointAt(f.deps, deployment, at(moment(second), -1))).id).toBe(first.checkpointId);
    expect((await checkpointAt(f.deps, deployment, at(moment(second)))).id).toBe(second.checkpointId);
    expect((await checkpointAt(f.deps, deployment, at(moment(third), 86_400_000))).id).toBe(third.checkpointId);
    const early = checkpointAt(f.deps, deployment, at(moment(first), -1));
    await expect(early).rejects.toBeInstanceOf(MomentOutOfRangeError);
    await expect(early).rejects.toThrow(`cover ${moment(first)} to ${moment(third)}`);

    // The second checkpoint's manifest edited at the first location: read from the second, which authenticates.
    const [one, two] = f.deps.locations();
    const manifestKey = CHECKPOINT_KIND.key(deployment, second.checkpointId, POINT_MANIFEST);
    const original = (await readAll(await one!.get(manifestKey))).toString('utf8');
    await one!.put(manifestKey, Buffer.from(original.replace(/"objects": 6/, '"objects": 7')));
    const fellBack = await checkpointAt(f.deps, deployment, at(moment(second)));
    expect(fellBack.id).toBe(second.checkpointId);
    expect(fellBack.locations.map((l) => l.name)).toEqual([two!.name]);
    expect(fellBack.skipped[0]!.message).toMatch(/fails its MAC/);
    await one!.put(manifestKey, Buffer.from(original));
    // Its index damaged at the first location: the entries come from the second, whole.
    const found = await checkpointAt(f.deps, deployment, at(moment(second)));
    const indexKey = found.manifest.artifacts.recordingsIndex.key;
    const stored = await readAll(await one!.get(indexKey));
    const damaged = Buffer.from(stored);
    damaged[damaged.length - 3]! ^= 0xff;
    await one!.put(indexKey, damaged);
    const entries: IndexEntry[] = [];
    for await (const e of checkpointEntries(f.deps, found)) entries.push(e);
    expect(entries).toEqual(await indexOf(f.deps, second.checkpointId, 1));
    await one!.put(indexKey, stored);

    // Connectors: stored when changed, not when the same inventory is exported again.
    const e1 = await runConnectorCheckpoint(f.deps, { deployment });
    expect(e1.changed).toBe(true);
    const again = await runConnectorCheckpoint(f.deps, { deployment });
    expect(again).toMatchObject({ changed: false, exportId: e1.exportId });
    const inventory = await f.deps.controlPlane('production').exportConnectors();
    const renamed = { ...inventory, connectors: inventory.connectors.map((c, i) => (i === 0 ? { ...c, name: `${c.name}-renamed` } : c)) };
    const imported = await f.api('POST', '/admin/connectors/import', renamed);
    expect(imported.status).toBeLessThan(300);
    const e2 = await runConnectorCheckpoint(f.deps, { deployment });
    expect(e2.changed).toBe(true);
    expect(e2.exportId! > e1.exportId!).toBe(true);

    expect((await connectorExportAt(f.deps, deployment, at(moment(e1)))).id).toBe(e1.exportId);
    expect((await connectorExportAt(f.deps, deployment, at(moment(e2), -1))).id).toBe(e1.exportId);
    const current = await connectorExportAt(f.deps, deployment, at(moment(e2)));
    expect(current.id).toBe(e2.exportId);
    expect((await readConnectorExport(f.deps, current)).connectors.map((c) => c.name)).toEqual(renamed.connectors.map((c) => c.name));
    await expect(connectorExportAt(f.deps, deployment, at(moment(e1), -1))).rejects.toThrow(`cover ${moment(e1)} to ${moment(e2)}`);
  });

  it('a checkpoint killed mid-copy or before its manifest leaves nothing committed, and its retry copies nothing twice', async () => {
    for (let i = 0; i < 5; i++) await client().putObject(bucket, `sessions/zz-crash-${i}.cast`, Buffer.from(`recording ${i} `.repeat(200)));
    const committedBefore = (await listPoints(f.deps.locations(), CHECKPOINT_KIND, deployment, f.deps.keyRing())).map((e) => e.id);

    // Killed after its second new blob.
    const killed = await runCheckpointProcess(f.config, deployment, { VAULTPAM_FAULT_POINT: `${CHECKPOINT_FAULT_POINTS.afterBlobWritten}@2`, VAULTPAM_FAULT_POINT_DIR: `/tmp/vpb-fault-${deployment}-a` });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const afterKill = await listPointIds(f.deps.locations()[0]!, CHECKPOINT_KIND, deployment);
    expect(afterKill.committed).toEqual(committedBefore.slice().sort());
    expect(afterKill.pending).toHaveLength(1);
    expect((await listPoints(f.deps.locations(), CHECKPOINT_KIND, deployment, f.deps.keyRing())).map((e) => e.id)).toEqual(committedBefore);

    // Killed again, this time with every blob and the index written, before the manifest.
    const beforeManifest = await runCheckpointProcess(f.config, deployment, { VAULTPAM_FAULT_POINT: CHECKPOINT_FAULT_POINTS.beforeManifest });
    expect(beforeManifest.signal, beforeManifest.stderr).toBe('SIGKILL');
    const pendingNow = await listPointIds(f.deps.locations()[0]!, CHECKPOINT_KIND, deployment);
    expect(pendingNow.pending).toEqual(afterKill.pending);
    expect(pendingNow.committed).toEqual(afterKill.committed);

    // The retry takes up the same checkpoint: every new blob is found whole, none is copied again.
    const retry = await runRecordingsCheckpoint(f.deps, { deployment });
    expect(retry.checkpointId).toBe(afterKill.pending[0]);
    expect(retry).toMatchObject({ resumed: true, copiedObjects: 0, copiedBytes: 0, resumedObjects: 5, objects: 11 });
    const index = await indexOf(f.deps, retry.checkpointId);
    expect(new Map(index.map((e) => [e.key, e.etag]))).toEqual(await liveObjects());
    const pendingAfter = await listPointIds(f.deps.locations()[0]!, CHECKPOINT_KIND, deployment);
    expect(pendingAfter.pending).toEqual([]);
  });

  it('prune keeps every blob a checkpoint names, even once the backup that wrote it is gone, and lets checkpoints go after the window', async () => {
    const config: Config = parseConfig({ ...f.config, retention: { ...f.config.retention, keepLast: 1, keepDays: 1 } });
    h = await temporalHarness(config);
    const harness = h;
    const backup = (now?: () => Date) => harness.withWorker(async () => backupResult(await startBackup(harness.client, config, { taskQueue: harness.taskQueue })), now ? { now } : {}, config);

    // A recording first written by a backup; the checkpoint after that backup shares the backup's blob for it.
    await client().putObject(bucket, 'sessions/zz-only-in-a-checkpoint.cast', Buffer.from('kept by a checkpoint '.repeat(50)));
    await nextSecond();
    const writer = await backup();
    await nextSecond();
    const shared = await runRecordingsCheckpoint(f.deps, { deployment });
    expect(shared).toMatchObject({ copiedObjects: 0, reusedObjects: 12 });
    const line = (await indexOf(f.deps, shared.checkpointId)).find((e) => e.key === 'sessions/zz-only-in-a-checkpoint.cast')!;

    // The recording leaves the bucket; three days later a backup prunes the one that wrote its blob.
    await client().removeObject(bucket, line.key);
    const later = await backup(() => new Date(Date.now() + 3 * 86_400_000));
    expect(later.pruned!.removed).toEqual([writer.backupId]);
    for (const location of f.deps.locations()) await expect(readBlobWhole(location, deployment, line), `the blob at ${location.name}`).resolves.toBe(line.size);

    // Ten days later (a 7-day window): only the newest checkpoint and export stay, and the blob with it.
    const checkpointsBefore = (await listPoints(f.deps.locations(), CHECKPOINT_KIND, deployment, f.deps.keyRing())).length;
    expect(checkpointsBefore).toBeGreaterThan(2);
    await backup(() => new Date(Date.now() + 10 * 86_400_000));
    expect((await listPoints(f.deps.locations(), CHECKPOINT_KIND, deployment, f.deps.keyRing())).map((e) => e.id)).toEqual([shared.checkpointId]);
    expect(await listPoints(f.deps.locations(), CONNECTOR_EXPORT_KIND, deployment, f.deps.keyRing())).toHaveLength(1);
    for (const location of f.deps.locations()) await expect(readBlobWhole(location, deployment, line)).resolves.toBe(line.size);

    // A checkpoint killed after its first new blob, which no manifest names yet: the next prune finds it unfinished
    // and sweeps nothing, so its retry finds that blob whole.
    await client().putObject(bucket, 'sessions/zz-unfinished.cast', Buffer.from('written while a prune runs '.repeat(40)));
    await nextSecond();
    const killed = await runCheckpointProcess(f.config, deployment, { VAULTPAM_FAULT_POINT: CHECKPOINT_FAULT_POINTS.afterBlobWritten });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const [unfinishedId] = (await listPointIds(f.deps.locations()[0]!, CHECKPOINT_KIND, deployment)).pending;
    const wrapped = JSON.parse((await readAll(await f.deps.locations()[0]!.get(CHECKPOINT_KIND.key(deployment, unfinishedId!, POINT_DATA_KEY_FILE)))).toString('utf8')) as WrappedKey;
    const stat = await client().statObject(bucket, 'sessions/zz-unfinished.cast');
    const written = ownBlobOf(unwrapKey(wrapped, f.deps.keyRing()), { key: 'sessions/zz-unfinished.cast', size: stat.size, etag: stat.etag.replace(/"/g, '') });
    for (const location of f.deps.locations()) expect(await location.exists(blobKey(deployment, written.blob))).toBe(true);
    await backup();
    expect(await f.deps.locations()[0]!.exists(sweepMarkerKey(deployment))).toBe(false);
    for (const location of f.deps.locations()) expect(await location.exists(blobKey(deployment, written.blob)), `the unfinished checkpoint's blob at ${location.name}`).toBe(true);
    // While a prune sweeps, a checkpoint does not start.
    await f.deps.locations()[0]!.put(sweepMarkerKey(deployment), Buffer.from(JSON.stringify({ since: new Date().toISOString() })));
    await expect(runRecordingsCheckpoint(f.deps, { deployment })).rejects.toThrow(/prune has been sweeping/);
    await f.deps.locations()[0]!.delete([sweepMarkerKey(deployment)]);
    const resumed = await runRecordingsCheckpoint(f.deps, { deployment });
    // It takes up its own unfinished checkpoint; the backup since holds every recording, so it shares them all.
    expect(resumed).toMatchObject({ checkpointId: unfinishedId, resumed: true, copiedObjects: 0 });

    // The repository check counts what checkpoints name: none is missing, and the one orphan at each location is the
    // blob the killed attempt wrote, which its retry no longer needed (it shares the backup's); the next prune takes it.
    const check = await harness.withWorker(async () => checkResult(harness.client, (await startCheck(harness.client, config, { requestedBy: 'vitest', taskQueue: harness.taskQueue })).workflowId), {}, config);
    expect(check.orphans.map((o) => [o.location, o.count, o.sample, o.missingCount, o.skipped])).toEqual(f.deps.locations().map((l) => [l.name, 1, [written.blob], 0, undefined]));
    // And it finds every checkpoint and the export whole at both locations: the older checkpoint's blobs are checked
    // with it, since the backup it built on is gone; the newer one shares them and checks only its own.
    expect(check.problems).toEqual([]);
    expect(check.pointInTime).toMatchObject({ checkpoints: 2, connectorExports: 1, copiesChecked: 6, copiesNotHeld: 0 });
    expect(check.pointInTime!.blobsChecked).toBeGreaterThanOrEqual(2 * shared.objects);
  });

  it('key rotation rewraps every checkpoint and connector export: they read under the new key alone', async () => {
    const keys = f.config.encryption.keys;
    const during = parseConfig({ ...f.config, encryption: { activeKeyId: 'rotated', keys: [...keys, { id: 'rotated', secret: { env: 'VAULTPAM_TEST_KEY_ROTATED' } }] } });
    const after = parseConfig({ ...f.config, encryption: { activeKeyId: 'rotated', keys: [{ id: 'rotated', secret: { env: 'VAULTPAM_TEST_KEY_ROTATED' } }] } });
    const onlyNew = createDependencies(after);
    const before = await listPoints(f.deps.locations(), CHECKPOINT_KIND, deployment, f.deps.keyRing());
    const newest = before[0]!;
    await expect(listPoints(onlyNew.locations(), CHECKPOINT_KIND, deployment, onlyNew.keyRing(), { strict: true })).rejects.toThrow(/not in the key ring/);

    const duringDeps = createDependencies(during);
    const result = await rewrapDataKeys(duringDeps.locations(), deployment, duringDeps.keyRing());
    expect(result.checkpointsRewrapped).toBe(before.length);
    expect(result.connectorExportsRewrapped).toBe(1);
    // Twice is once: nothing is left under the old key.
    expect((await rewrapDataKeys(duringDeps.locations(), deployment, duringDeps.keyRing())).checkpointsRewrapped).toBe(0);

    // The old key gone: the checkpoint and the export authenticate and open at every location.
    const checkpoints = await listPoints(onlyNew.locations(), CHECKPOINT_KIND, deployment, onlyNew.keyRing(), { strict: true });
    expect(checkpoints.map((e) => [e.id, e.locations])).toEqual(before.map((e) => [e.id, onlyNew.locations().map((l) => l.name)]));
    const reference = await indexOf(onlyNew, newest.id, 0);
    expect(reference).toHaveLength(newest.manifest.recordings.objects);
    for (let i = 1; i < onlyNew.locations().length; i++) expect(await indexOf(onlyNew, newest.id, i)).toEqual(reference);
    const exportNow = await connectorExportAt(onlyNew, deployment, new Date());
    expect((await readConnectorExport(onlyNew, exportNow)).connectors.length).toBe(2);
    // The next checkpoint under the new key merges against the rewrapped one.
    await nextSecond();
    const next = await runRecordingsCheckpoint(onlyNew, { deployment });
    expect(next).toMatchObject({ copiedObjects: 0, reusedObjects: (await liveObjects()).size });
  });
});
