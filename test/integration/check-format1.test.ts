// The repository check on a format 1 repository (manifests without a MAC, index lines with short field names, bare
// blob names): manifests counted as unauthenticated; a blob re-keyed at one location repaired from the other; the old
// defect, one blob name that two backups name under two keys, reported at both locations and left alone.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAll, writeArtifact } from '../../src/catalog/artifacts';
import { readManifest } from '../../src/catalog/catalog';
import { jsonLine } from '../../src/catalog/json-lines';
import { recordingIdentity } from '../../src/catalog/recording-blobs';
import { readRecordingsIndex, type IndexEntry } from '../../src/catalog/recordings-index';
import { createEncryptStream, unwrapKey } from '../../src/crypto';
import { backupResult, startBackup } from '../../src/operations/backup';
import { checkResult, startCheck, type StartCheckOptions } from '../../src/operations/check';
import { createDependencies } from '../../src/runtime/dependencies';
import { blobKey, blobsPrefix, manifestKey, parseBlobKey } from '../../src/storage';
import type { CheckProblem, CheckReport } from '../../workflows/check-types';
import { isolatedConfig, seedSandbox } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

describe('repository check of a format 1 repository', () => {
  const config = isolatedConfig();
  const deps = createDependencies(config);
  const deployment = config.deployment.name;
  const locations = deps.locations();
  const [primary, secondary] = locations as [(typeof locations)[number], (typeof locations)[number]];
  const recordings = deps.recordingsClient('production');
  const bucket = deps.deployment('production').recordings.bucket;
  let h: TemporalHarness;
  const backupIds: string[] = [];
  let entries: IndexEntry[] = [];

  async function check(options: StartCheckOptions = {}): Promise<CheckReport> {
    return h.withWorker(async () => checkResult(h.client, (await startCheck(h.client, config, { ...options, taskQueue: h.taskQueue })).workflowId));
  }

  async function sealed(entry: IndexEntry, key: Buffer): Promise<Buffer> {
    const plain = await readAll(await recordings.getObject(bucket, entry.key));
    return readAll(Readable.from([plain]).pipe(createEncryptStream(key)));
  }

  /**
   * Rewrites a backup as format 1 wrote it, in both locations: bare blob names (the recording's identity), index lines
   * {k, s, e, b, bk}, a manifest of format 1 without a MAC. `keyFor` may name another key for a recording's line.
   */
  async function toFormat1(backupId: string, keyFor: (entry: IndexEntry) => string = (e) => e.blobKey): Promise<IndexEntry[]> {
    const manifest = (await readManifest(primary, deployment, backupId))!;
    const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
    const lines: Buffer[] = [];
    const converted: IndexEntry[] = [];
    for await (const e of readRecordingsIndex(primary, manifest.artifacts.recordingsIndex, dataKey)) {
      const bare = recordingIdentity(e);
      for (const location of locations) {
        if (!(await location.exists(blobKey(deployment, bare)))) await location.put(blobKey(deployment, bare), await readAll(await location.get(blobKey(deployment, e.blob))));
      }
      lines.push(jsonLine({ k: e.key, s: e.size, e: e.etag, b: bare, bk: keyFor(e) }));
      converted.push({ ...e, blob: bare, blobKey: keyFor(e) });
    }
    const index = await writeArtifact(primary, manifest.artifacts.recordingsIndex.key, Buffer.concat(lines), dataKey);
    await secondary.put(index.key, await readAll(await primary.get(index.key)));
    const { authentication: _mac, ...rest } = manifest;
    const format1 = Buffer.from(JSON.stringify({ ...rest, format: 1, artifacts: { ...rest.artifacts, recordingsIndex: index } }, null, 2));
    for (const location of locations) await location.put(manifestKey(deployment, backupId), format1);
    return converted;
  }

  const find = (report: CheckReport, where: Partial<CheckProblem>) => report.problems.filter((p) => Object.entries(where).every(([k, v]) => p[k as keyof CheckProblem] === v));

  beforeAll(async () => {
    h = await temporalHarness(config);
    await seedSandbox('production', { resources: 2, auditEntries: 10, recordings: 6, recordingBytes: 5_000 });
    for (let i = 0; i < 2; i++) {
      backupIds.push((await h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'format 1 fixture', requestedBy: 'vitest' })))).backupId);
    }
    entries = await toFormat1(backupIds[0]!);
    await toFormat1(backupIds[1]!);
    // The format 2 blobs are referenced by nothing any more.
    for (const location of locations) {
      const sharded: string[] = [];
      for await (const item of location.list(blobsPrefix(deployment))) if (parseBlobKey(deployment, item.key)?.includes('/')) sharded.push(item.key);
      await location.delete(sharded);
    }
  }, 600_000);
  afterAll(async () => h?.close());

  it('reads a format 1 repository: unauthenticated manifests, bare blob names, every blob once per location', async () => {
    const report = await check({ readData: 'all' });
    expect(report.problems).toEqual([]);
    expect(report.manifests).toEqual({ authenticated: 0, unauthenticated: 4 });
    expect(report.blobsRead).toBe(entries.length * 2);
    expect(report.orphans.map((o) => o.count)).toEqual([0, 0]);
  });

  it('repairs a blob re-keyed at one location when only one key names it, and leaves a blob two backups name under two keys', async () => {
    const [shared, conflicting] = entries.filter((e) => e.size === 5_000) as [IndexEntry, IndexEntry];
    // Damage with a good copy elsewhere: a blob sealed under a key no index names, at the primary only.
    await primary.put(blobKey(deployment, shared.blob), await sealed(shared, randomBytes(32)));
    // The old defect: the second backup's index names the same bare blob under a key of its own, and the primary
    // holds it under that key, so the first backup cannot open it there and the second cannot at the secondary.
    const otherKey = randomBytes(32);
    await toFormat1(backupIds[1]!, (e) => (e.key === conflicting.key ? otherKey.toString('base64') : e.blobKey));
    await primary.put(blobKey(deployment, conflicting.blob), await sealed(conflicting, otherKey));

    const found = await check();
    expect(find(found, { location: 'primary', backupId: backupIds[0], recordingKey: shared.key, kind: 'blob-key' })).toHaveLength(1);
    expect(find(found, { location: 'primary', backupId: backupIds[0], recordingKey: conflicting.key, kind: 'blob-key' })).toHaveLength(1);
    expect(find(found, { location: 'secondary', backupId: backupIds[1], recordingKey: conflicting.key, kind: 'blob-key' })).toHaveLength(1);
    expect(found.remainingCount).toBe(3);

    const repaired = await check({ repair: true });
    expect(find(repaired, { recordingKey: shared.key })[0]?.repair).toEqual({ outcome: 'repaired', from: 'secondary' });
    const refused = find(repaired, { recordingKey: conflicting.key });
    expect(refused.map((p) => [p.location, p.backupId])).toEqual(expect.arrayContaining([['primary', backupIds[0]], ['secondary', backupIds[1]]]));
    for (const p of refused) expect(p.repair?.outcome === 'refused' && p.repair.reason).toMatch(/names the same blob .* under another key/);
    expect(repaired.remainingCount).toBe(2);
    // The blobs the refusal protected are as they were: each backup still opens it at one location.
    const again = await check({ readData: 'all' });
    expect(again.problemCount).toBe(2);
    expect(find(again, { recordingKey: shared.key })).toEqual([]);
  });
});
