// A recording that leaves the bucket and comes back is sealed again under a blob of its own: the blob an older backup
// reads is never written twice, and every backup of the sequence opens whole from each location alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/catalog/catalog';
import type { Manifest } from '../../src/catalog/manifest';
import { readBlobWhole } from '../../src/catalog/recording-blobs';
import { readRecordingsIndex, type IndexEntry } from '../../src/catalog/recordings-index';
import { parseConfig } from '../../src/config/load';
import { unwrapKey } from '../../src/crypto';
import { backupResult, startBackup } from '../../src/operations/backup';
import { checkResult, startCheck } from '../../src/operations/check';
import { runVerify } from '../../src/operations/verify';
import { startApprovedRestore } from '../support/approved-restore';
import { dropDatabase } from '../../src/postgres';
import { createDependencies } from '../../src/runtime/dependencies';
import { hashStored } from '../../src/catalog/artifacts';
import { blobKey, type BackupLocation } from '../../src/storage';
import type { RestoreReport } from '../../workflows/restore-types';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

describe('shared recording blobs across a deletion, a restore and the next backup', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  const setAside: string[] = [];

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 10, auditEntries: 50, recordings: 40, recordingBytes: 3_000 });
  }, 240_000);
  afterAll(async () => {
    const pg = f?.config.deployment.postgres;
    for (const name of setAside) await dropDatabase(pg, f.deps.postgresPassword('production'), name, { ifExists: true, force: true }).catch(() => undefined);
    await h?.close();
    await f?.destroy();
  });

  async function manifestOf(backupId: string): Promise<Manifest> {
    return (await readManifest(f.deps.locations()[0]!, f.config.deployment.name, backupId, { keyRing: f.deps.keyRing() }))!;
  }
  async function indexOf(backupId: string): Promise<IndexEntry[]> {
    const manifest = await manifestOf(backupId);
    const entries: IndexEntry[] = [];
    for await (const e of readRecordingsIndex(f.deps.locations()[0]!, manifest.artifacts.recordingsIndex, unwrapKey(manifest.encryption.dataKey, f.deps.keyRing()))) entries.push(e);
    return entries;
  }
  /** SHA-256 of every blob of a backup at a location: a blob written again gets other bytes (fresh nonce). */
  async function blobDigests(location: BackupLocation, entries: IndexEntry[]): Promise<Map<string, string>> {
    const digests = new Map<string, string>();
    for (const e of entries) digests.set(e.blob, (await hashStored(location, blobKey(f.config.deployment.name, e.blob))).sha256);
    return digests;
  }

  it('never rewrites a blob an older backup reads, and every backup opens whole at every location', async () => {
    const deployment = f.config.deployment.name;
    const backup = () => h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'shared blobs test' })));

    // 1. A backup of the 40 recordings.
    const first = await backup();
    const firstIndex = await indexOf(first.backupId);
    expect(firstIndex).toHaveLength(40);
    const digestsBefore = new Map<string, Map<string, string>>();
    for (const location of f.deps.locations()) digestsBefore.set(location.name, await blobDigests(location, firstIndex));

    // 2. Thirty recordings deleted from the bucket.
    const client = f.deps.recordingsClient('production');
    const bucket = f.config.deployment.recordings.bucket;
    const deleted = firstIndex.slice(5, 35);
    for (const e of deleted) await client.removeObject(bucket, e.key);

    // 3. The first backup restored, confirmed: its safety snapshot lacks the thirty; the restore puts them back.
    const report = await h.withWorker(async () => {
      const handle = await startApprovedRestore(h.client, f.config, { backupId: first.backupId, reason: 'undo the deletion', taskQueue: h.taskQueue });
      return (await handle.result()) as RestoreReport;
    });
    if (report.previousDatabase) setAside.push(report.previousDatabase);
    expect(report.status).toBe('completed');
    expect(report.safetySnapshotId).toBeDefined();
    const snapshotIndex = await indexOf(report.safetySnapshotId!);
    expect(snapshotIndex.some((e) => deleted.some((d) => d.key === e.key))).toBe(false);

    // 4. The next backup builds on the snapshot, which lacks the thirty: it copies them, under blobs of its own.
    const next = await backup();
    expect(next.recordings.copiedObjects).toBeGreaterThanOrEqual(30);
    const nextIndex = await indexOf(next.backupId);
    const firstBlobs = new Map(firstIndex.map((e) => [e.key, e.blob]));
    for (const d of deleted) {
      const again = nextIndex.find((e) => e.key === d.key)!;
      expect(again.etag).toBe(d.etag);
      expect(again.blob, `${d.key} is sealed under a new blob`).not.toBe(firstBlobs.get(d.key));
    }

    // The first backup's blobs are byte for byte what they were, at every location.
    for (const location of f.deps.locations()) {
      expect(await blobDigests(location, firstIndex), `blobs of ${first.backupId} at ${location.name}`).toEqual(digestsBefore.get(location.name));
    }

    // Every blob of every backup of the sequence opens whole, at every location.
    for (const backupId of [first.backupId, report.safetySnapshotId!, next.backupId]) {
      const entries = await indexOf(backupId);
      for (const location of f.deps.locations()) {
        for (const e of entries) await expect(readBlobWhole(location, deployment, e), `${e.key} of ${backupId} at ${location.name}`).resolves.toBe(e.size);
      }
    }
    const verified = await h.withWorker(() => runVerify(h.client, f.config, first.backupId, false, h.taskQueue));
    expect(verified.ok).toBe(true);
    for (const l of verified.locations) expect(l.blobsRead).toBe(40);

    // The repository check reading every blob of every backup finds nothing wrong anywhere.
    const check = await h.withWorker(async () => checkResult(h.client, (await startCheck(h.client, f.config, { readData: 'all', requestedBy: 'vitest', taskQueue: h.taskQueue })).workflowId));
    expect(check.problems).toEqual([]);
    expect(check.ok).toBe(true);
    expect(check.backups).toBe(3);
    expect(check.locations).toEqual(f.deps.locations().map((l) => l.name));
    expect(check.blobsRead).toBeGreaterThan(0);
  });

  it('restores the oldest backup from each location alone', async () => {
    const backups: string[] = [];
    for await (const item of f.deps.locations()[0]!.list(`${f.config.deployment.name}/backups/`)) {
      if (item.key.endsWith('/manifest.json')) backups.push(item.key.split('/')[2]!);
    }
    const oldest = backups.sort()[0]!;
    const oldestIndex = await indexOf(oldest);
    for (const location of f.config.locations) {
      const alone = parseConfig({ ...f.config, locations: [location] });
      const report = await h.withWorker(
        async () => {
          const handle = await startApprovedRestore(h.client, alone, { backupId: oldest, safetySnapshot: false, reason: `from ${location.name} alone`, taskQueue: h.taskQueue });
          return (await handle.result()) as RestoreReport;
        },
        {},
        alone,
      );
      if (report.previousDatabase) setAside.push(report.previousDatabase);
      expect(report.status, `restore from ${location.name} alone`).toBe('completed');
      expect(report.backup!.location).toBe(location.name);
      const live = new Map<string, string>();
      for await (const o of createDependencies(alone).recordingsClient('production').listObjectsV2(alone.deployment.recordings.bucket, '', true) as AsyncIterable<{ name: string; etag: string }>) {
        live.set(o.name, o.etag.replace(/"/g, ''));
      }
      for (const e of oldestIndex) expect(live.get(e.key), `${e.key} after the restore from ${location.name}`).toBe(e.etag);
    }
  });
});
