// A check interrupted in the middle of its blob pass (a backup's, or a recordings checkpoint's) resumes from its last
// heartbeat: the retry does not read again what the interrupted attempt had finished, and the report counts every
// blob exactly once.
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRecordingsCheckpoint } from '../../activities/checkpoint-recordings';
import { parseConfig } from '../../src/config/load';
import { backupResult, startBackup } from '../../src/operations/backup';
import { checkResult, startCheck } from '../../src/operations/check';
import { createDependencies } from '../../src/runtime/dependencies';
import { blobsPrefix, type BackupLocation, type ListedObject, type ObjectStat, type PutResult } from '../../src/storage';
import { ensureRecordings, isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

/** The real location, whose blob reads are counted, and whose `failAt`-th blob read fails once (a dropped connection). */
class InterruptedReads implements BackupLocation {
  readonly name: string;
  readonly region: string;
  readonly kind: BackupLocation['kind'];
  blobGets = 0;
  getsAtFailure = 0;
  constructor(
    private readonly real: BackupLocation,
    private readonly deployment: string,
    private readonly failAt: number,
  ) {
    this.name = real.name;
    this.region = real.region;
    this.kind = real.kind;
  }
  async get(key: string): Promise<Readable> {
    if (key.startsWith(blobsPrefix(this.deployment))) {
      this.blobGets += 1;
      if (this.blobGets === this.failAt) {
        this.getsAtFailure = this.blobGets;
        // Long enough after the last checkpoint for its heartbeat to reach the server.
        await new Promise((r) => setTimeout(r, 3_000));
        throw new Error(`injected interruption of ${this.name} at blob read ${this.failAt}`);
      }
    }
    return this.real.get(key);
  }
  put(key: string, body: Readable | Buffer, size?: number): Promise<PutResult> {
    return this.real.put(key, body, size);
  }
  stat(key: string): Promise<ObjectStat | undefined> {
    return this.real.stat(key);
  }
  exists(key: string): Promise<boolean> {
    return this.real.exists(key);
  }
  list(prefix: string): AsyncIterable<ListedObject> {
    return this.real.list(prefix);
  }
  delete(keys: string[]): Promise<void> {
    return this.real.delete(keys);
  }
  ensureReady(): Promise<void> {
    return this.real.ensureReady();
  }
  describe(): string {
    return this.real.describe();
  }
}

describe('check interrupted mid-way', () => {
  // One blob at a time, so the checkpoint position is exact.
  const config = isolatedConfig((base) => ({ backup: { ...base.backup, concurrency: 1 } }));
  const deps = createDependencies(config);
  let h: TemporalHarness;
  let blobs = 0;

  beforeAll(async () => {
    h = await temporalHarness(config);
    await ensureRecordings(120, 2_000);
    const result = await h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'resume fixture', requestedBy: 'vitest' })));
    blobs = result.recordings.objects;
  }, 600_000);
  afterAll(async () => h?.close());

  it('resumes the blob pass from its heartbeat and counts each blob once', async () => {
    const [primary, secondary] = deps.locations();
    // Two reads per blob with --read-data (the header check, then the whole blob): fail past the middle.
    const interrupted = new InterruptedReads(primary!, config.deployment.name, blobs + 21);
    const report = await h.withWorker(
      async () => checkResult(h.client, (await startCheck(h.client, config, { readData: 'all', taskQueue: h.taskQueue })).workflowId),
      { locations: () => [interrupted, secondary!] },
    );
    expect(report.problems).toEqual([]);
    expect(report.blobsRead).toBe(blobs * 2);
    expect(interrupted.getsAtFailure).toBe(blobs + 21);
    // A retry from the start would read all 2 x blobs again; from the checkpoint (about blob (blobs + 21) / 2), only
    // the rest: about blobs - 21 reads.
    const afterRetry = interrupted.blobGets - interrupted.getsAtFailure;
    expect(afterRetry).toBeLessThan(blobs + 40);
    expect(afterRetry).toBeGreaterThan(0);
  });

  it('resumes the blob pass of a recordings checkpoint from its heartbeat and counts each blob once', async () => {
    // A deployment of its own with no backup: its first checkpoint seals every recording in a blob of its own, which
    // only its own check covers.
    const pitConfig = isolatedConfig((base) => ({ backup: { ...base.backup, concurrency: 1 } }));
    const pitDeps = createDependencies(pitConfig);
    const checkpoint = await runRecordingsCheckpoint(createDependencies(parseConfig({ ...pitConfig, backup: { ...pitConfig.backup, concurrency: 4 } })), { deployment: pitConfig.deployment.name });
    const own = checkpoint.copiedObjects;
    expect(own).toBeGreaterThanOrEqual(120);
    const [primary, secondary] = pitDeps.locations();
    const interrupted = new InterruptedReads(primary!, pitConfig.deployment.name, own + 21);
    const report = await h.withWorker(
      async () => checkResult(h.client, (await startCheck(h.client, pitConfig, { readData: 'all', taskQueue: h.taskQueue })).workflowId),
      { locations: () => [interrupted, secondary!] },
      pitConfig,
    );
    expect(report.problems).toEqual([]);
    expect(report.pointInTime).toMatchObject({ checkpoints: 1, copiesChecked: 2, blobsChecked: own * 2, blobsRead: own * 2 });
    expect(interrupted.getsAtFailure).toBe(own + 21);
    const afterRetry = interrupted.blobGets - interrupted.getsAtFailure;
    expect(afterRetry).toBeLessThan(own + 40);
    expect(afterRetry).toBeGreaterThan(0);
  });
});
