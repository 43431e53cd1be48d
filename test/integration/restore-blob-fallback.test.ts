// One recording's blob bad at the first location is read from the next; bad at every location, it is named before
// anything stops, and the restore goes ahead without it only once the confirmation accepts its loss.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecordingsIndex, type IndexEntry } from '../../src/catalog/recordings-index';
import { readAll } from '../../src/catalog/artifacts';
import { readManifest } from '../../src/catalog/catalog';
import { unwrapKey } from '../../src/crypto';
import { backupResult, startBackup } from '../../src/operations/backup';
import { confirmRestore, restoreReport, startRestore } from '../../src/operations/restore';
import { TEST_APPROVER, TEST_REQUESTER, startApprovedRestore } from '../support/approved-restore';
import { parseConfig } from '../../src/config/load';
import { blobKey, type BackupLocation } from '../../src/storage';
import type { RestoreReport } from '../../workflows/restore-types';
import { observedServiceControl, restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { until as untilValue } from '../support/until';

/** This file's waits: 120_000 ms at most. */
const until = <T>(probe: () => Promise<T | undefined>, what: string) => untilValue(probe, what, 120_000);

/** The blob with one bit flipped at `offset`: same size, and a chunk (or the header) that no longer authenticates. */
async function flipByte(location: BackupLocation, key: string, offset: (size: number) => number): Promise<void> {
  const bytes = Buffer.from(await readAll(await location.get(key)));
  const at = offset(bytes.length);
  bytes[at] = bytes[at]! ^ 0x01;
  await location.put(key, bytes);
}

describe('restore reads each recording from wherever it verifies', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;
  let locations: BackupLocation[];
  let entries: IndexEntry[];
  const setAside: string[] = [];

  const bucket = () => f.config.deployment.recordings.bucket;
  const liveEtag = (key: string) =>
    f.deps
      .recordingsClient('production')
      .statObject(bucket(), key)
      .then(
        (s) => s.etag.replace(/"/g, ''),
        () => undefined,
      );
  const removeLive = (key: string) => f.deps.recordingsClient('production').removeObject(bucket(), key);

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 10, auditEntries: 100, recordings: 12, recordingBytes: 20_000 });
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the blob damage' })))).backupId;
    locations = f.deps.locations();
    expect(locations.length).toBeGreaterThanOrEqual(2);
    const manifest = (await readManifest(locations[0]!, f.config.deployment.name, backupId))!;
    const dataKey = unwrapKey(manifest.encryption.dataKey, f.deps.keyRing());
    entries = [];
    for await (const e of readRecordingsIndex(locations[0]!, manifest.artifacts.recordingsIndex, dataKey)) entries.push(e);
    expect(entries.length).toBe(12);
  }, 240_000);
  afterAll(async () => {
    const { dropDatabase } = await import('../../src/postgres');
    for (const name of setAside) await dropDatabase(f.config.deployment.postgres, f.deps.postgresPassword('production'), name, { ifExists: true, force: true }).catch(() => undefined);
    await h?.close();
    await f?.destroy();
  });

  it('restores a recording whose primary blob has a flipped byte from the other location, and says which one served it', async () => {
    const damaged = entries[3]!;
    const intact = entries[7]!;
    await flipByte(locations[0]!, blobKey(f.config.deployment.name, damaged.blob), (size) => Math.floor(size / 2));
    await removeLive(damaged.key);
    await removeLive(intact.key);

    const report = await h.withWorker(async () => {
      const handle = await startApprovedRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'damaged primary blob', taskQueue: h.taskQueue });
      return (await handle.result()) as RestoreReport;
    });
    if (report.previousDatabase) setAside.push(report.previousDatabase);

    expect(report.status).toBe('completed');
    expect(report.backup!.location).toBe(locations[0]!.name);
    // Header and size are intact: the preflight passes it at the first location; only the decrypt finds the damage.
    expect(report.recordingsCheck).toMatchObject({ checked: 12, elsewhere: 0, unrecoverable: { count: 0 } });
    expect(report.recordings!.restored).toBe(2);
    expect(report.recordings!.servedElsewhere).toEqual({
      count: 1,
      examples: [{ key: damaged.key, location: locations[1]!.name, skipped: [{ location: locations[0]!.name, problem: expect.stringMatching(/failed authentication/) as unknown as string }] }],
    });
    expect(await liveEtag(damaged.key)).toBe(damaged.etag);
    expect(await liveEtag(intact.key)).toBe(intact.etag);
  });

  it('refuses before anything stops when a recording verifies nowhere, names it, and restores the rest once its loss is accepted', async () => {
    const lost = entries[5]!;
    const other = entries[9]!;
    const lostBlob = blobKey(f.config.deployment.name, lost.blob);
    await locations[0]!.delete([lostBlob]);
    // The key check sits at bytes 9-16 of the header.
    await flipByte(locations[1]!, lostBlob, () => 12);
    await removeLive(lost.key);
    await removeLive(other.key);
    const service = observedServiceControl(f);

    // Pre-confirmed without accepting the loss: refused at preflight (pre-confirmed needs a target without approvals).
    const withoutApprovals = parseConfig({ ...f.config, restore: { ...f.config.restore, approvals: { production: 0, staging: 0 } } });
    await h.withWorker(
      async () => {
        const refused = await startRestore(h.client, f.config, { backupId, confirmed: true, safetySnapshot: false, reason: 'blob lost everywhere', taskQueue: h.taskQueue, principal: TEST_REQUESTER });
        await expect(refused.result()).rejects.toThrow();
        const refusal = await restoreReport(h.client, refused.workflowId);
        expect(refusal.status).toBe('refused');
        expect(refusal.step).toBe('preflight');
        expect(refusal.error).toContain(lost.key);
        expect(service.calls).toEqual([]);
      },
      service.overrides,
      withoutApprovals,
    );

    await h.withWorker(async () => {
      const handle = await startRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'blob lost everywhere', taskQueue: h.taskQueue, principal: TEST_REQUESTER });
      const waiting = await until(async () => {
        const r = await restoreReport(h.client, handle.workflowId);
        return r.status === 'awaiting-confirmation' ? r : undefined;
      }, 'the confirmation prompt');
      const check = waiting.recordingsCheck!;
      expect(check.unrecoverable.count).toBe(1);
      expect(check.unrecoverable.recordings).toHaveLength(1);
      expect(check.unrecoverable.recordings[0]!.key).toBe(lost.key);
      expect(check.unrecoverable.recordings[0]!.problems).toEqual([
        { location: locations[0]!.name, problem: `blob ${lostBlob} is missing` },
        { location: locations[1]!.name, problem: `blob ${lostBlob} fails its header key check` },
      ]);
      expect(service.calls).toEqual([]);

      const confirmation = { backupId, lossReportDigest: waiting.lossReportDigest!, principal: TEST_APPROVER };
      await expect(confirmRestore(h.client, f.config, handle.workflowId, confirmation)).rejects.toThrow(new RegExp(`1 recording\\(s\\) of the backup verify at no location: ${lost.key}`));
      await expect(confirmRestore(h.client, f.config, handle.workflowId, { ...confirmation, acceptUnrecoverable: 'f'.repeat(64) })).rejects.toThrow(/verify at no location/);
      expect((await restoreReport(h.client, handle.workflowId)).status).toBe('awaiting-confirmation');
      expect(service.calls).toEqual([]);

      await confirmRestore(h.client, f.config, handle.workflowId, { ...confirmation, acceptUnrecoverable: check.unrecoverable.digest });
      const report = (await handle.result()) as RestoreReport;
      if (report.previousDatabase) setAside.push(report.previousDatabase);
      expect(report.status).toBe('completed');
      expect(report.acceptedUnrecoverable).toBe(1);
      expect(report.recordings).toMatchObject({ restored: 1, unrecoverable: 1 });
    }, service.overrides);

    expect(service.calls).toEqual(['stop production', 'start production']);
    expect(await liveEtag(other.key)).toBe(other.etag);
    expect(await liveEtag(lost.key)).toBeUndefined();
    for (const e of entries) if (e.key !== lost.key) expect(await liveEtag(e.key), e.key).toBe(e.etag);
  });
});
