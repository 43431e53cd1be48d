// A recording larger than one upload part is restored by a multipart upload, whose ETag differs from the original's:
// the restore records the ETag it got, and a rollback recognises that version and removes it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESTORED_BY_METADATA } from '../../activities/recording-source';
import { restoredEtagKey } from '../../activities/restore-recordings';
import { readAll } from '../../src/catalog/artifacts';
import { backupResult, startBackup } from '../../src/operations/backup';
import { restoreReport } from '../../src/operations/restore';
import { startApprovedRestore } from '../support/approved-restore';
import { DEFAULT_PART_SIZE, createS3Client } from '../../src/storage';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const LARGE_KEY = 'sessions/large/recording-past-one-part.cast';
const LARGE_BYTES = DEFAULT_PART_SIZE + 3 * 1024 * 1024;

describe('restore of a recording larger than one upload part', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;
  let originalEtag: string;

  const client = () => f.deps.recordingsClient('production');
  const bucket = () => f.config.deployment.recordings.bucket;

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 5, auditEntries: 50, recordings: 4, recordingBytes: 4_000 });
    const content = Buffer.alloc(LARGE_BYTES, 'recording frame\n');
    // Written in one PUT (a client whose part is larger than the object), so its ETag is the content's MD5; a restore's
    // upload, in parts of DEFAULT_PART_SIZE, gets a multipart ETag.
    const recordings = f.config.deployment.recordings;
    const onePart = createS3Client(recordings, f.deps.secret(recordings.secretKey), { partSize: 2 * DEFAULT_PART_SIZE });
    originalEtag = (await onePart.putObject(bucket(), LARGE_KEY, content, content.length)).etag;
    expect(originalEtag).not.toContain('-');
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the large recording is lost' })))).backupId;
  }, 300_000);
  afterAll(async () => {
    await h?.close();
    await f?.destroy();
  });

  it('puts it back under this restore, with the ETag it got, and the rollback removes exactly that version', async () => {
    await client().removeObject(bucket(), LARGE_KEY);
    const before = await f.fingerprint();
    const failingSmokeTest = { ...f.config, deployment: { ...f.config.deployment, controlPlane: { ...f.config.deployment.controlPlane, smokeTestResourceId: 'res_does_not_exist' } } };

    let restoredVersion: { etag: string; restoredBy: string | undefined; size: number } | undefined;
    await h.withWorker(
      async () => {
        const handle = await startApprovedRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'large recording', taskQueue: h.taskQueue });
        // The restored version, seen while the workflow goes on to its failing smoke test.
        const deadline = Date.now() + 120_000;
        while (!restoredVersion && Date.now() < deadline) {
          const stat = await client()
            .statObject(bucket(), LARGE_KEY)
            .catch(() => undefined);
          if (stat) restoredVersion = { etag: stat.etag, restoredBy: stat.metaData?.[RESTORED_BY_METADATA] as string | undefined, size: stat.size };
          else await new Promise((r) => setTimeout(r, 100));
        }
        await expect(handle.result()).rejects.toThrow();
        const report = await restoreReport(h.client, handle.workflowId);
        expect(report.status).toBe('rolled-back');
        expect(report.error).toMatch(/res_does_not_exist/);
        expect(report.recordings).toMatchObject({ restored: 1 });
        expect(report.rollback!.every((r) => r.ok)).toBe(true);
        expect(restoredVersion).toEqual({ etag: expect.stringMatching(/-\d+$/) as unknown as string, restoredBy: report.restoreId, size: LARGE_BYTES });
        // The ETag the upload returned, kept beside the journal: what the rollback compared the object with.
        const journal = f.deps.locations().find((l) => l.name === report.backup!.location)!;
        const record = JSON.parse((await readAll(await journal.get(restoredEtagKey(f.config.deployment.name, report.restoreId, LARGE_KEY)))).toString('utf8')) as unknown;
        expect(record).toEqual({ key: LARGE_KEY, etag: restoredVersion!.etag });
      },
      {},
      failingSmokeTest,
    );
    expect(restoredVersion!.etag).not.toBe(originalEtag);
    // The rollback removed the version the restore wrote: the bucket is as it was, the large recording still absent.
    expect(await f.fingerprint()).toEqual(before);
  }, 300_000);
});
