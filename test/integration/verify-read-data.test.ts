// Verification reads data: a backup's own verify relies on its copy's confirmation of each blob it wrote and reads a
// sample; `backups verify` reads every blob, so one flipped byte in one blob is named with its recording and location.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAll } from '../../src/catalog/artifacts';
import { readManifest } from '../../src/catalog/catalog';
import { readRecordingsIndex, type IndexEntry } from '../../src/catalog/recordings-index';
import { unwrapKey } from '../../src/crypto';
import { backupResult, startBackup } from '../../src/operations/backup';
import { runVerify } from '../../src/operations/verify';
import { createDependencies } from '../../src/runtime/dependencies';
import { blobKey } from '../../src/storage';
import { isolatedConfig, seedSandbox } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

describe('verification reads data', () => {
  const config = isolatedConfig((base) => ({ verify: { sampleRecordings: 5 }, backup: { ...base.backup } }));
  const deps = createDependencies(config);
  let h: TemporalHarness;

  beforeAll(async () => {
    h = await temporalHarness(config);
    await seedSandbox('production', { resources: 2, auditEntries: 10, recordings: 12, recordingBytes: 5_000 });
  });
  afterAll(async () => h?.close());

  it('counts every blob a backup wrote as confirmed by its copy and reads a sample; backups verify names one flipped byte', async () => {
    const result = await h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'verify test' })));
    expect(result.verify.blobsConfirmed).toBe(result.recordings.copiedObjects);
    expect(result.verify.blobsChecked).toBe(0);
    expect(result.verify.blobsRead).toBe(Math.min(5, result.recordings.copiedObjects));

    const [primary, secondary] = deps.locations();
    const manifest = (await readManifest(primary!, config.deployment.name, result.backupId))!;
    const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
    const entries: IndexEntry[] = [];
    for await (const e of readRecordingsIndex(primary!, manifest.artifacts.recordingsIndex, dataKey)) entries.push(e);
    const victim = entries[Math.floor(entries.length / 2)]!;

    const clean = await h.withWorker(() => runVerify(h.client, config, result.backupId, false, h.taskQueue));
    expect(clean.ok).toBe(true);
    for (const l of clean.locations) expect(l.blobsRead).toBe(result.recordings.objects);

    // One bit flipped past the header: sizes and the header's key check still pass, only reading the data shows it.
    const key = blobKey(config.deployment.name, victim.blob);
    const bytes = await readAll(await primary!.get(key));
    bytes[bytes.length - 40] = bytes[bytes.length - 40]! ^ 0x01;
    await primary!.put(key, bytes);

    const report = await h.withWorker(() => runVerify(h.client, config, result.backupId, false, h.taskQueue));
    expect(report.ok).toBe(false);
    const atPrimary = report.locations.find((l) => l.name === primary!.name)!;
    expect(atPrimary.ok).toBe(false);
    expect(atPrimary.problem).toContain(victim.key);
    expect(atPrimary.problem).toContain(primary!.describe());
    expect(report.locations.find((l) => l.name === secondary!.name)!.ok).toBe(true);

    // One byte flipped in the middle of the dump at the other location: the single read that hashes, decrypts and
    // lists it names the dump there as damaged, at once (BackupCorrupt is not retried).
    const dumpBytes = await readAll(await secondary!.get(manifest.artifacts.db.key));
    const middle = Math.floor(dumpBytes.length / 2);
    dumpBytes[middle] = dumpBytes[middle]! ^ 0x01;
    await secondary!.put(manifest.artifacts.db.key, dumpBytes);
    const damaged = await h.withWorker(() => runVerify(h.client, config, result.backupId, false, h.taskQueue));
    const atSecondary = damaged.locations.find((l) => l.name === secondary!.name)!;
    expect(atSecondary.ok).toBe(false);
    expect(atSecondary.problem).toContain(manifest.artifacts.db.key);
    expect(atSecondary.problem).toContain(secondary!.describe());
    expect(atSecondary.problem).toMatch(/corrupt|differs from the recorded/);
    const history = await h.client.workflow.getHandle(damaged.workflowId, damaged.runId).fetchHistory();
    const attempts = (history.events ?? []).flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt ?? 1] : []));
    expect(attempts.length).toBeGreaterThan(0);
    expect(Math.max(...attempts)).toBe(1);
  });
});
