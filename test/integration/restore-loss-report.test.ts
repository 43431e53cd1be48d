// The restore's loss report on the real stack, both ways: resources and recordings deleted after a backup show as
// brought back, and the confirmation prompt says so; a restore left unconfirmed changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRestoreReport } from '../../src/cli/output';
import { backupResult, startBackup } from '../../src/operations/backup';
import { restoreReport, startRestore } from '../../src/operations/restore';
import { TEST_REQUESTER } from '../support/approved-restore';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { until } from '../support/until';

describe('two-sided loss report', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 20, auditEntries: 50, recordings: 10, recordingBytes: 3_000 });
    // Rows are counted from the database's point (to the microsecond), but recordings from the bucket's clock, which
    // S3 gives to the second: a recording stamped in the same second as the backup's point counts as newer (the safe
    // side for a loss). The seed is made to lie wholly before that second.
    await new Promise((r) => setTimeout(r, 1_100));
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the accident' })))).backupId;
  }, 180_000);
  afterAll(async () => {
    await h?.close();
    await f?.destroy();
  });

  it('shows resources and recordings deleted since the backup as brought back, with their bytes', async () => {
    // 60% of the resources deleted, and 4 recordings removed from the bucket.
    const resources = ((await f.api('GET', '/resources?limit=100')).json as { resources: { id: string }[] }).resources;
    const deleted = resources.slice(0, Math.round(resources.length * 0.6));
    for (const r of deleted) expect((await f.api('DELETE', `/resources/${r.id}`)).status).toBe(200);
    const bucket = f.config.deployment.recordings.bucket;
    const s3 = f.deps.recordingsClient('production');
    const removed: { name: string; size: number }[] = [];
    for await (const item of s3.listObjectsV2(bucket, '', true) as AsyncIterable<{ name?: string; size: number }>) {
      if (item.name && removed.length < 4) removed.push({ name: item.name, size: item.size });
    }
    await s3.removeObjects(bucket, removed.map((r) => r.name));
    const before = await f.fingerprint();

    await h.withWorker(async () => {
      const handle = await startRestore(h.client, f.config, { backupId, reason: 'bulk deletion', taskQueue: h.taskQueue, confirmTimeout: '10 minutes', principal: TEST_REQUESTER });
      const waiting = await until(async () => {
        const r = await restoreReport(h.client, handle.workflowId);
        return r.status === 'awaiting-confirmation' ? r : undefined;
      }, 'the confirmation prompt');
      const loss = waiting.lossReport!;
      expect(loss.broughtBack).toMatchObject({ resources: deleted.length, recordings: { objects: 4, bytes: removed.reduce((sum, r) => sum + r.size, 0) } });
      // The lost side: nothing was created since; the deletions wrote audit entries, which the restore drops.
      expect(loss.resources).toEqual({ created: 0, modified: 0 });
      expect(loss.auditEntries).toBeGreaterThanOrEqual(deleted.length);

      const text = formatRestoreReport(waiting);
      expect(text).toMatch(new RegExp(`resources\\s+${deleted.length}\\s+0 created, 0 modified`));
      expect(text).toMatch(/recordings\s+4 \(\d+\.\d KiB\)/);
      expect(text).toContain(waiting.lossReportDigest!);

      await handle.cancel();
      await handle.result().catch(() => undefined);
    });
    // Unconfirmed: nothing changed.
    expect(await f.fingerprint()).toEqual(before);
  });
});
