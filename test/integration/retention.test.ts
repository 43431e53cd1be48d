// Retention: with the activities' clock moved forward, a backup prunes those past the policy (manifests and
// artifacts everywhere) and sweeps blobs only they referenced; the newest stays and still verifies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/catalog';
import { backupResult, startBackup } from '../../src/operations/backup';
import { runVerify } from '../../src/operations/verify';
import { runAuditCheck } from '../../src/operations/audit';
import { createDependencies } from '../../src/runtime/dependencies';
import { blobsPrefix, backupPrefix } from '../../src/storage';
import { isolatedConfig } from '../support/backup-fixture';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { CountingLocation } from '../support/counting-location';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

describe('retention', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;

  beforeAll(async () => {
    f = await restoreFixture();
    await f.seed({ resources: 3, auditEntries: 10, recordings: 20, recordingBytes: 2_000 });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
    await f?.destroy();
  });

  it('removes backups past keepLast and keepDays, sweeps blobs only they held, keeps the newest verifiable', async () => {
    const config = { ...f.config, retention: { ...f.config.retention, keepLast: 1, keepDays: 1 } };
    h = await temporalHarness(config);
    const deps = createDependencies(config);
    const deployment = config.deployment.name;
    const backup = (overrides = {}) => h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue })), overrides, config);
    const blobs = async () => {
      const keys: string[] = [];
      for await (const item of deps.locations()[1]!.list(blobsPrefix(deployment))) keys.push(item.key);
      return keys;
    };

    const first = await backup();
    const second = await backup();
    // Both younger than keepDays: nothing is pruned yet.
    expect(second.pruned).toEqual({ removed: [], blobsRemoved: 0 });
    expect((await listBackups(deps.locations(), deployment)).map((e) => e.backupId)).toEqual([second.backupId, first.backupId]);
    expect(await blobs()).toHaveLength(20);

    // Five recordings go from the bucket: only the old backups still reference their blobs.
    const client = deps.recordingsClient('production');
    const names: string[] = [];
    for await (const o of client.listObjectsV2(config.deployment.recordings.bucket, '', true) as AsyncIterable<{ name: string }>) names.push(o.name);
    await client.removeObjects(config.deployment.recordings.bucket, names.slice(0, 5));

    // Three days later, by the activities' clock.
    const counted = deps.locations().map((l) => new CountingLocation(l));
    const third = await backup({ now: () => new Date(Date.now() + 3 * 86_400_000), locations: () => counted });
    expect(third.pruned!.removed.sort()).toEqual([first.backupId, second.backupId].sort());
    expect(third.pruned!.blobsRemoved).toBe(5 * deps.locations().length);
    // Judged among the blobs the removed backups named, against the index of the one built on them: no location's
    // blobs listed, and nothing deleted there but those five.
    for (const location of counted) {
      const underBlobs = location.under(blobsPrefix(deployment));
      expect(underBlobs.filter((r) => r.operation === 'list'), `listings at ${location.name}`).toEqual([]);
      expect(underBlobs.filter((r) => r.operation === 'delete'), `deletes at ${location.name}`).toHaveLength(5);
    }
    expect((await listBackups(deps.locations(), deployment)).map((e) => e.backupId)).toEqual([third.backupId]);
    expect(await blobs()).toHaveLength(15);
    for (const location of deps.locations()) {
      for (const gone of [first.backupId, second.backupId]) {
        const left: string[] = [];
        for await (const item of location.list(backupPrefix(deployment, gone))) left.push(item.key);
        expect(left).toEqual([]);
      }
    }
    const report = await h.withWorker(() => runVerify(h.client, config, third.backupId, false, h.taskQueue), {}, config);
    expect(report.ok).toBe(true);

    // The audit trail says which backups retention removed, after which backup, and the verify that followed.
    const audit = await runAuditCheck(config);
    expect(audit.problems).toEqual([]);
    const pruned = audit.entries.filter((e) => e.kind === 'backup.pruned');
    expect(pruned.map((e) => e.subject.backupId)).toEqual([third.backupId]);
    expect([...(pruned[0]!.details.removed as string[])].sort()).toEqual([first.backupId, second.backupId].sort());
    expect(audit.entries.filter((e) => e.kind === 'verify.completed').map((e) => `${e.subject.backupId} ${String(e.details.ok)}`)).toEqual([`${third.backupId} true`]);
  });

  it('rejects a retention policy that would keep nothing', () => {
    expect(() => isolatedConfig((base) => ({ retention: { ...base.retention, keepLast: 0 } }))).toThrow(/retention\.keepLast/);
  });
});
