// A recording larger than one upload part is restored by a multipart upload, whose ETag differs from the original's:
// the restore records the ETag it got, and a rollback recognises that version and removes it (the rollback forced by a
// planned recording that changes after the restart, while the recordings are restored behind the control plane).
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
/** After LARGE_KEY in the bucket's key order. */
const CHANGED_KEY = 'sessions/zz-changed-after-the-plan.cast';
let smokeSession: string | undefined;

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
    // A recording after the large one in key order, planned for quarantine and then changed behind the restore's back
    // once the control plane restarts: the recordings step, after the large upload, fails on it and rolls back.
    const late = Buffer.from('written after the backup\n');
    await client().putObject(bucket(), CHANGED_KEY, late, late.length);
    const before = await f.fingerprint();
    let changedEtag: string | undefined;

    let restoredVersion: { etag: string; restoredBy: string | undefined; size: number } | undefined;
    await h.withWorker(async () => {
      const handle = await startApprovedRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'large recording', taskQueue: h.taskQueue });
      // The plan is made before the restart: once the restore restarts the control plane, the key changes.
      const deadline = Date.now() + 180_000;
      while (changedEtag === undefined && Date.now() < deadline) {
        const step = (await restoreReport(h.client, handle.workflowId).catch(() => undefined))?.step;
        expect(step).not.toBe('restore-recordings');
        if (step === 'restart' || step === 'import-connectors' || step === 'verify') {
          const again = Buffer.from('changed after the restore plan\n'.repeat(3));
          changedEtag = (await client().putObject(bucket(), CHANGED_KEY, again, again.length)).etag;
        } else await new Promise((r) => setTimeout(r, 50));
      }
      expect(changedEtag).toBeDefined();
      // The restored version, seen while the recordings step goes on to the changed key.
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
      expect(report.error).toMatch(/changed after the restore plan was made/);
      expect(report.rollback!.every((r) => r.ok)).toBe(true);
      expect(restoredVersion).toEqual({ etag: expect.stringMatching(/-\d+$/) as unknown as string, restoredBy: report.restoreId, size: LARGE_BYTES });
      // The ETag the upload returned, kept beside the journal: what the rollback compared the object with.
      const journal = f.deps.locations().find((l) => l.name === report.backup!.location)!;
      const record = JSON.parse((await readAll(await journal.get(restoredEtagKey(f.config.deployment.name, report.restoreId, LARGE_KEY)))).toString('utf8')) as unknown;
      expect(record).toEqual({ key: LARGE_KEY, etag: restoredVersion!.etag });
      smokeSession = report.smokeTest!.sessionId;
    });
    expect(restoredVersion!.etag).not.toBe(originalEtag);
    // The rollback removed the version the restore wrote: the bucket is as it was, the large recording still absent;
    // only the changed key (as the test left it) and the smoke test's recording differ.
    const after = await f.fingerprint();
    const others = (objects: string[]) => objects.filter((o) => !o.startsWith(`${CHANGED_KEY} `) && !o.includes(smokeSession!));
    expect(others(after.objects)).toEqual(others(before.objects));
    expect(after.objects.some((o) => o.startsWith(LARGE_KEY))).toBe(false);
    expect({ ...after, objects: [] }).toEqual({ ...before, objects: [] });
  }, 300_000);
});
