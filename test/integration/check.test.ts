// The repository check on the real stack: clean after two backups and the recordings checkpoints and connector export
// after them; damage of each kind (a flipped byte, a deleted blob or artifact, a blob rewritten under another key, an
// edited manifest), in a backup or in a checkpoint or export, named with its location and recording, checkpoint or
// export, repaired from the other location or the live bucket, and refused with the recording named when no good copy exists.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConnectorCheckpoint } from '../../activities/checkpoint-connectors';
import { runRecordingsCheckpoint } from '../../activities/checkpoint-recordings';
import { buildApi } from '../../src/api/app';
import { CHECKPOINT_KIND, CONNECTOR_EXPORT_KIND, type CheckpointManifest, type ConnectorExportManifest } from '../../src/catalog/checkpoint-manifest';
import { readPointManifest } from '../../src/catalog/point-in-time-catalog';
import { readAll } from '../../src/catalog/artifacts';
import { readManifest } from '../../src/catalog/catalog';
import { readRecordingsIndex, type IndexEntry } from '../../src/catalog/recordings-index';
import { HEADER_LENGTH, createEncryptStream, unwrapKey } from '../../src/crypto';
import { backupResult, startBackup } from '../../src/operations/backup';
import { checkResult, checkStatus, parseReadDataSubset, startCheck, type StartCheckOptions } from '../../src/operations/check';
import { checkScheduleId, createCheckSchedule, deleteCheckSchedule } from '../../src/operations/schedule';
import { createDependencies } from '../../src/runtime/dependencies';
import { blobKey, lastCheckKey, manifestKey } from '../../src/storage';
import { POINT_MANIFEST } from '../../src/storage/layout';
import type { CheckProblem, CheckReport, ScheduledCheckResult } from '../../workflows/check-types';
import type { LastCheckRecord } from '../../activities/check';
import { isolatedConfig, seedSandbox } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { apiCaller, authenticatorFor } from '../support/api-callers';

describe('repository check', () => {
  const config = isolatedConfig();
  const deps = createDependencies(config);
  const deployment = config.deployment.name;
  const [primary, secondary] = deps.locations() as [ReturnType<typeof deps.locations>[number], ReturnType<typeof deps.locations>[number]];
  const bucket = deps.deployment('production').recordings.bucket;
  const recordings = deps.recordingsClient('production');
  let h: TemporalHarness;
  const backupIds: string[] = [];
  /** Every distinct blob the two backups reference, with one index entry naming it. */
  const referenced = new Map<string, IndexEntry>();
  /** Entries handed out to the tests one by one, so no two tests damage the same recording. */
  let spare: IndexEntry[] = [];
  /**
   * Point-in-time protection after the backups: a checkpoint that seals one new recording (its own blob, named by no
   * backup) and shares the rest with the second backup, a second one sharing everything with the first, an export.
   */
  let firstCheckpoint: CheckpointManifest;
  let secondCheckpoint: CheckpointManifest;
  let connectorExport: ConnectorExportManifest;
  /** The index entry of the recording only the checkpoints name. */
  let checkpointOnly: IndexEntry;

  async function backup() {
    return h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'check test', requestedBy: 'vitest' })));
  }

  async function check(options: StartCheckOptions = {}): Promise<CheckReport> {
    return h.withWorker(async () => checkResult(h.client, (await startCheck(h.client, config, { ...options, taskQueue: h.taskQueue })).workflowId));
  }

  async function indexOf(backupId: string): Promise<IndexEntry[]> {
    const manifest = (await readManifest(primary, deployment, backupId))!;
    const entries: IndexEntry[] = [];
    for await (const e of readRecordingsIndex(primary, manifest.artifacts.recordingsIndex, unwrapKey(manifest.encryption.dataKey, deps.keyRing()))) entries.push(e);
    return entries;
  }

  /** The old defect: the recording sealed under a fresh random key, into the blob name the index gives. */
  async function rewriteUnderAnotherKey(location: typeof primary, entry: IndexEntry) {
    const plain = await readAll(await recordings.getObject(bucket, entry.key));
    const sealed = await readAll(Readable.from([plain]).pipe(createEncryptStream(randomBytes(32))));
    await location.put(blobKey(deployment, entry.blob), sealed);
  }

  function takeEntry(): IndexEntry {
    const entry = spare.shift();
    if (!entry) throw new Error('the test ran out of recordings to damage');
    return entry;
  }

  const find = (report: CheckReport, where: Partial<CheckProblem>) => report.problems.filter((p) => Object.entries(where).every(([k, v]) => p[k as keyof CheckProblem] === v));

  beforeAll(async () => {
    h = await temporalHarness(config);
    await seedSandbox('production', { resources: 5, auditEntries: 50, recordings: 24, recordingBytes: 9_000 });
    backupIds.push((await backup()).backupId);
    await seedSandbox('production', { organisations: 0, resources: 0, connectors: 0, auditEntries: 0, recordings: 2, recordingBytes: 7_000 });
    backupIds.push((await backup()).backupId);
    for (const id of backupIds) for (const e of await indexOf(id)) if (!referenced.has(e.blob)) referenced.set(e.blob, e);
    // Recordings of this test's own seeding only (size 9000): others may be shared with other test files' buckets.
    spare = [...referenced.values()].filter((e) => e.size === 9_000);

    const recordingKey = `sessions/check-only-in-checkpoints-${deployment}.cast`;
    await recordings.putObject(bucket, recordingKey, randomBytes(3_000));
    // The bucket's clock counts whole seconds: the checkpoint's moment must be past the new recording's.
    await new Promise((r) => setTimeout(r, 1_100));
    const checkpoint = async () => (await readPointManifest(primary, CHECKPOINT_KIND, deployment, (await runRecordingsCheckpoint(deps, { deployment })).checkpointId, deps.keyRing()))!;
    firstCheckpoint = await checkpoint();
    expect(firstCheckpoint.recordings.copiedObjects).toBe(1);
    await new Promise((r) => setTimeout(r, 1_100));
    secondCheckpoint = await checkpoint();
    expect(secondCheckpoint.recordings.copiedObjects).toBe(0);
    connectorExport = (await readPointManifest(primary, CONNECTOR_EXPORT_KIND, deployment, (await runConnectorCheckpoint(deps, { deployment })).exportId!, deps.keyRing()))!;
    for await (const e of readRecordingsIndex(primary, firstCheckpoint.artifacts.recordingsIndex, unwrapKey(firstCheckpoint.encryption.dataKey, deps.keyRing()))) {
      if (e.key === recordingKey) checkpointOnly = e;
    }
    expect(referenced.has(checkpointOnly.blob)).toBe(false);
  }, 600_000);

  afterAll(async () => {
    await deleteCheckSchedule(h.client, config).catch(() => undefined);
    await h?.close();
  });

  it('finds nothing in a clean repository after two backups, reading every blob at each location', async () => {
    const report = await check({ readData: 'all' });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.backups).toBe(2);
    expect(report.manifests).toEqual({ authenticated: 4, unauthenticated: 0 });
    // Each blob once per location, though both backups name most of them.
    expect(report.blobsRead).toBe(referenced.size * 2);
    expect(report.orphans.map((o) => [o.location, o.count, o.missingCount])).toEqual([
      ['primary', 0, 0],
      ['secondary', 0, 0],
    ]);
    // Two checkpoints and an export, at both locations; the one blob only the checkpoints name is read once per
    // location (the second checkpoint shares it, the first shares the rest with the second backup, checked above).
    expect(report.pointInTime).toEqual({
      checkpoints: 2,
      connectorExports: 1,
      copiesChecked: 6,
      copiesNotHeld: 0,
      artifactsChecked: 2 * (2 * 2 + 1),
      blobsChecked: 2,
      blobsShared: 2 * (firstCheckpoint.recordings.objects - 1 + secondCheckpoint.recordings.objects),
      blobsRead: 2,
      bytesRead: 2 * 3_000,
    });
    for (const location of [primary, secondary]) {
      const last = JSON.parse((await readAll(await location.get(lastCheckKey(deployment)))).toString('utf8')) as LastCheckRecord;
      expect(last.checkId).toBe(report.checkId);
      expect(last.ok).toBe(true);
    }
  });

  it('reads every referenced blob exactly once over the slices 1/3, 2/3, 3/3', async () => {
    const sliceOf = (blob: string) => Math.floor((parseInt(blob.slice(-64, -56), 16) * 3) / 2 ** 32) + 1;
    let total = 0;
    for (const slice of [1, 2, 3]) {
      const report = await check({ readData: { slice, of: 3 } });
      expect(report.ok).toBe(true);
      expect(report.readData).toBe(`${slice}/3`);
      const expected = [...referenced.keys()].filter((b) => sliceOf(b) === slice).length;
      expect(report.blobsRead).toBe(expected * 2);
      total += report.blobsRead;
    }
    expect(total).toBe(referenced.size * 2);
    expect(() => parseReadDataSubset('4/3')).toThrow(/n\/m with 1 <= n <= m/);
  });

  it('names the recording and the location of a blob with one byte flipped, and repairs it from the other copy', async () => {
    const entry = takeEntry();
    const key = blobKey(deployment, entry.blob);
    const bytes = await readAll(await primary.get(key));
    bytes.writeUInt8(bytes.readUInt8(HEADER_LENGTH + 100) ^ 0x01, HEADER_LENGTH + 100);
    await primary.put(key, bytes);

    const found = await check({ readData: 'all' });
    expect(found.ok).toBe(false);
    expect(find(found, { location: 'primary', recordingKey: entry.key, kind: 'blob-damaged' })).toHaveLength(1);
    expect(find(found, { location: 'secondary' })).toEqual([]);

    const repaired = await check({ readData: 'all', repair: true });
    expect(find(repaired, { location: 'primary', recordingKey: entry.key })[0]?.repair).toEqual({ outcome: 'repaired', from: 'secondary' });
    expect(repaired.ok).toBe(true);

    const after = await check({ readData: 'all' });
    expect(after.problems).toEqual([]);
    expect(after.blobsRead).toBe(referenced.size * 2);
  });

  it('reads a blob that opens under its key but holds other content as not the recording (MD5 of the ETag), and repairs it', async () => {
    const entry = takeEntry();
    expect(entry.etag).toMatch(/^[0-9a-f]{32}$/);
    const other = await readAll(Readable.from([randomBytes(entry.size)]).pipe(createEncryptStream(Buffer.from(entry.blobKey, 'base64'))));
    await primary.put(blobKey(deployment, entry.blob), other);

    // Present, of the right size, sealed under the right key: only reading the data tells.
    expect((await check()).problems).toEqual([]);
    const found = await check({ readData: 'all' });
    expect(find(found, { location: 'primary', recordingKey: entry.key, kind: 'blob-content' })[0]?.detail).toMatch(new RegExp(`differs from the recording's ETag ${entry.etag}`));
    const repaired = await check({ readData: 'all', repair: true });
    expect(find(repaired, { recordingKey: entry.key })[0]?.repair).toEqual({ outcome: 'repaired', from: 'secondary' });
    expect((await check({ readData: 'all' })).problems).toEqual([]);
  });

  it('names a blob deleted from the secondary and an artifact deleted from the primary, and restores both', async () => {
    const entry = takeEntry();
    await secondary.delete([blobKey(deployment, entry.blob)]);
    const manifest = (await readManifest(primary, deployment, backupIds[1]!))!;
    await primary.delete([manifest.artifacts.connectors.key]);

    const found = await check();
    expect(find(found, { location: 'secondary', recordingKey: entry.key, kind: 'blob-missing' })).toHaveLength(1);
    expect(find(found, { location: 'primary', backupId: backupIds[1], artifact: 'connectors', kind: 'artifact-missing' })).toHaveLength(1);
    expect(found.orphans.find((o) => o.location === 'secondary')).toMatchObject({ missingCount: 1, missingSample: [entry.blob] });
    expect(found.remainingCount).toBe(2);

    const repaired = await check({ repair: true });
    expect(repaired.repairedCount).toBe(2);
    expect(repaired.ok).toBe(true);
    // Safe to run twice: nothing left to repair.
    const again = await check({ readData: 'all', repair: true });
    expect(again.problems).toEqual([]);
  });

  it('names a blob rewritten under another key; repairs it from the other location, or from the live bucket when both are bad', async () => {
    const one = takeEntry();
    await rewriteUnderAnotherKey(primary, one);
    const found = await check();
    expect(find(found, { location: 'primary', recordingKey: one.key, kind: 'blob-key' })).toHaveLength(1);
    const fromOther = await check({ repair: true });
    expect(find(fromOther, { recordingKey: one.key })[0]?.repair).toEqual({ outcome: 'repaired', from: 'secondary' });

    const both = takeEntry();
    await rewriteUnderAnotherKey(primary, both);
    await rewriteUnderAnotherKey(secondary, both);
    const fromBucket = await check({ repair: true });
    // The locations are checked side by side: the first to repair seals from the bucket, the other may copy from it.
    const repairs = find(fromBucket, { recordingKey: both.key, kind: 'blob-key' });
    expect(repairs.map((p) => p.location).sort()).toEqual(['primary', 'secondary']);
    expect(repairs.every((p) => p.repair?.outcome === 'repaired')).toBe(true);
    expect(repairs.map((p) => p.repair?.outcome === 'repaired' && p.repair.from)).toContain('recordings bucket');
    expect(fromBucket.ok).toBe(true);
    expect((await check({ readData: 'all' })).problems).toEqual([]);
  });

  it('reports a manifest edited after it was written (checksum changed, MAC kept), and puts the authentic one back', async () => {
    const key = manifestKey(deployment, backupIds[1]!);
    const edited = JSON.parse((await readAll(await secondary.get(key))).toString('utf8')) as { artifacts: { db: { sha256: string } } };
    edited.artifacts.db.sha256 = 'f'.repeat(64);
    await secondary.put(key, Buffer.from(JSON.stringify(edited, null, 2)));

    const found = await check();
    expect(find(found, { location: 'secondary', backupId: backupIds[1], kind: 'manifest-mac' })[0]?.detail).toMatch(/fails its MAC/);
    const repaired = await check({ repair: true });
    expect(find(repaired, { location: 'secondary', kind: 'manifest-mac' })[0]?.repair).toEqual({ outcome: 'repaired', from: 'primary' });
    expect((await check()).problems).toEqual([]);
  });

  it('names a location lacking a manifest the other holds, and copies the authentic one there', async () => {
    await secondary.delete([manifestKey(deployment, backupIds[0]!)]);
    const found = await check();
    expect(find(found, { location: 'secondary', backupId: backupIds[0], kind: 'manifest-missing' })[0]?.detail).toBe('no manifest here, though primary holds one');
    const repaired = await check({ repair: true });
    expect(find(repaired, { location: 'secondary', kind: 'manifest-missing' })[0]?.repair).toEqual({ outcome: 'repaired', from: 'primary' });
    expect(await readManifest(secondary, deployment, backupIds[0]!, { keyRing: deps.keyRing() })).toEqual(await readManifest(primary, deployment, backupIds[0]!));
    expect((await check()).problems).toEqual([]);
  });

  it('names a checkpoint index with flipped bytes, a deleted export artifact, a blob only a checkpoint names and a deleted checkpoint manifest, and repairs each; twice is once', async () => {
    const indexKey = firstCheckpoint.artifacts.recordingsIndex.key;
    const damaged = await readAll(await primary.get(indexKey));
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 5) ^ 0xff, damaged.length - 5);
    await primary.put(indexKey, damaged);
    await secondary.delete([connectorExport.artifacts.connectors.key]);
    await secondary.delete([blobKey(deployment, checkpointOnly.blob)]);
    // And the checkpoint's manifest at the secondary, which it names: repaired last, once its blob is back there.
    await secondary.delete([CHECKPOINT_KIND.key(deployment, firstCheckpoint.checkpointId, POINT_MANIFEST)]);

    const found = await check();
    expect(found.ok).toBe(false);
    expect(find(found, { location: 'primary', checkpointId: firstCheckpoint.checkpointId, artifact: 'recordingsIndex', kind: 'artifact-damaged' })[0]?.detail).toMatch(/SHA-256 .* differs from the recorded/);
    expect(find(found, { location: 'secondary', exportId: connectorExport.exportId, artifact: 'connectors', kind: 'artifact-missing' })).toHaveLength(1);
    // Named once, by the checkpoint that sealed it: the second one shares it.
    expect(find(found, { recordingKey: checkpointOnly.key })).toEqual([
      { location: 'secondary', checkpointId: firstCheckpoint.checkpointId, recordingKey: checkpointOnly.key, blob: checkpointOnly.blob, kind: 'blob-missing', detail: 'it is missing' },
    ]);
    expect(find(found, { location: 'secondary', checkpointId: firstCheckpoint.checkpointId, kind: 'manifest-missing' })[0]?.detail).toBe('no manifest here, though primary holds one and names this location');
    expect(found.remainingCount).toBe(4);
    expect(found.orphans.find((o) => o.location === 'secondary')).toMatchObject({ missingCount: 1, missingSample: [checkpointOnly.blob] });
    for (const location of [primary, secondary]) {
      const last = JSON.parse((await readAll(await location.get(lastCheckKey(deployment)))).toString('utf8')) as LastCheckRecord;
      expect(last).toMatchObject({ ok: false, remainingCount: 4 });
    }

    const repaired = await check({ repair: true });
    expect(find(repaired, { location: 'primary', checkpointId: firstCheckpoint.checkpointId, artifact: 'recordingsIndex' })[0]?.repair).toEqual({ outcome: 'repaired', from: 'secondary' });
    expect(find(repaired, { location: 'secondary', exportId: connectorExport.exportId, artifact: 'connectors' })[0]?.repair).toEqual({ outcome: 'repaired', from: 'primary' });
    expect(find(repaired, { location: 'secondary', recordingKey: checkpointOnly.key })[0]?.repair).toEqual({ outcome: 'repaired', from: 'primary' });
    expect(find(repaired, { location: 'secondary', checkpointId: firstCheckpoint.checkpointId, kind: 'manifest-missing' })[0]?.repair).toEqual({ outcome: 'repaired', from: 'primary' });
    expect(repaired).toMatchObject({ ok: true, problemCount: 4, repairedCount: 4, remainingCount: 0 });
    // The manifests were not touched: they authenticate at both locations, and name what is there now.
    for (const location of [primary, secondary]) {
      expect(await readPointManifest(location, CHECKPOINT_KIND, deployment, firstCheckpoint.checkpointId, deps.keyRing())).toEqual(firstCheckpoint);
      expect(await readPointManifest(location, CONNECTOR_EXPORT_KIND, deployment, connectorExport.exportId, deps.keyRing())).toEqual(connectorExport);
    }
    expect(await readAll(await primary.get(indexKey))).toEqual(await readAll(await secondary.get(indexKey)));

    // Twice is once: nothing left to repair, with every blob read.
    const again = await check({ readData: 'all', repair: true });
    expect(again.problems).toEqual([]);
    expect(again.pointInTime).toMatchObject({ copiesChecked: 6, blobsRead: 2 });
  });

  it('repairs a checkpoint manifest that fails its MAC from the other location, and changes nothing where no good copy exists', async () => {
    const manifestAt = CHECKPOINT_KIND.key(deployment, secondCheckpoint.checkpointId, POINT_MANIFEST);
    const authentic = await readAll(await secondary.get(manifestAt));
    await secondary.put(manifestAt, Buffer.from(authentic.toString('utf8').replace(/"objects": \d+/, '"objects": 1')));
    // The export's inventory damaged differently in both locations: no copy verifies, so neither is rewritten.
    const artifactKey = connectorExport.artifacts.connectors.key;
    const original = await readAll(await primary.get(artifactKey));
    const bad = [0, 1].map((i) => {
      const copy = Buffer.from(original);
      copy.writeUInt8(copy.readUInt8(copy.length - 2 - i) ^ 0x01, copy.length - 2 - i);
      return copy;
    });
    await primary.put(artifactKey, bad[0]!);
    await secondary.put(artifactKey, bad[1]!);

    const report = await check({ repair: true });
    expect(find(report, { location: 'secondary', checkpointId: secondCheckpoint.checkpointId, kind: 'manifest-mac' })[0]?.repair).toEqual({ outcome: 'repaired', from: 'primary' });
    const refused = find(report, { exportId: connectorExport.exportId, kind: 'artifact-damaged' });
    expect(refused.map((p) => p.location).sort()).toEqual(['primary', 'secondary']);
    for (const p of refused) expect(p.repair?.outcome === 'refused' && p.repair.reason).toMatch(/no good copy/);
    expect(report).toMatchObject({ ok: false, remainingCount: 2 });
    expect(await readAll(await primary.get(artifactKey))).toEqual(bad[0]);
    expect(await readAll(await secondary.get(artifactKey))).toEqual(bad[1]);
    expect(await readAll(await secondary.get(manifestAt))).toEqual(authentic);

    await primary.put(artifactKey, original);
    await secondary.put(artifactKey, original);
    expect((await check()).problems).toEqual([]);
  });

  it('serves checks through the API: a bad slice is refused, a check starts and its report is read back', async () => {
    const operator = apiCaller('check-operator', ['viewer', 'operator']);
    const app = buildApi({ config, client: h.client, authenticator: authenticatorFor(operator), taskQueue: h.taskQueue });
    const bad = await app.inject({ method: 'POST', url: '/v1/checks', payload: { readDataSubset: '4/3' }, headers: operator.headers });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/n\/m with 1 <= n <= m/);
    const report = await h.withWorker(async () => {
      const started = await app.inject({ method: 'POST', url: '/v1/checks', payload: { readDataSubset: '2/2' }, headers: operator.headers });
      expect(started.statusCode).toBe(202);
      for (;;) {
        const status = (await app.inject({ method: 'GET', url: started.json().report, headers: operator.headers })).json() as Awaited<ReturnType<typeof checkStatus>>;
        if (status.status !== 'RUNNING') return status.report;
        await new Promise((r) => setTimeout(r, 250));
      }
    });
    expect(report).toMatchObject({ ok: true, readData: '2/2' });
    await app.close();
  });

  it('rotates the slice over consecutive scheduled runs', async () => {
    const id = await createCheckSchedule(h.client, config, { cron: '0 4 * * *', readDataSubsetOf: 3, taskQueue: h.taskQueue, paused: true });
    expect(id).toBe(checkScheduleId(deployment));
    const slices: string[] = [];
    await h.withWorker(async () => {
      for (let run = 1; run <= 2; run++) {
        await h.client.schedule.getHandle(id).trigger();
        for (;;) {
          const recent = (await h.client.schedule.getHandle(id).describe()).info.recentActions;
          if (recent.length >= run) {
            const result = (await h.client.workflow.getHandle(recent[run - 1]!.action.workflow.workflowId, recent[run - 1]!.action.workflow.firstExecutionRunId).result()) as ScheduledCheckResult;
            expect(result.started).toBe(true);
            if (result.started) slices.push(result.report.readData);
            break;
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    });
    expect(slices).toEqual(['1/3', '2/3']);
  });

  it('finds a shared blob lost at the primary that the next backup took over without asking there, and repairs it', async () => {
    const entry = takeEntry();
    await primary.delete([blobKey(deployment, entry.blob)]);
    // The next backup trusts the backup it builds on for what it shares: it commits, naming the lost blob.
    const next = await backup();
    backupIds.push(next.backupId);
    expect((await indexOf(next.backupId)).find((e) => e.key === entry.key)?.blob).toBe(entry.blob);

    // The scheduled check is where that guarantee lives: it names the blob once, at the oldest backup naming it.
    const found = await check();
    const lost = find(found, { location: 'primary', recordingKey: entry.key, kind: 'blob-missing' });
    expect(lost).toHaveLength(1);
    expect(lost[0]!.backupId).toBe(backupIds[0]);
    const repaired = await check({ repair: true });
    expect(find(repaired, { location: 'primary', recordingKey: entry.key })[0]?.repair?.outcome).toBe('repaired');
    expect(await primary.stat(blobKey(deployment, entry.blob))).toBeDefined();
    expect((await check()).problems).toEqual([]);
  });

  // Last: it leaves the repository damaged for good.
  it('refuses to repair a recording bad in every location and gone from the bucket, and names it', async () => {
    const entry = takeEntry();
    await rewriteUnderAnotherKey(primary, entry);
    await rewriteUnderAnotherKey(secondary, entry);
    await recordings.removeObject(bucket, entry.key);

    const report = await check({ repair: true });
    expect(report.ok).toBe(false);
    const refused = find(report, { recordingKey: entry.key });
    expect(refused.map((p) => p.location).sort()).toEqual(['primary', 'secondary']);
    for (const p of refused) {
      expect(p.repair?.outcome).toBe('refused');
      expect(p.repair?.outcome === 'refused' && p.repair.reason).toMatch(/gone from the recordings bucket/);
    }
    expect(report.remainingCount).toBe(2);
  });
});
