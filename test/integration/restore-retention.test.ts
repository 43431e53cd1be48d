// Retention meets restores on the real stack: a restore of the oldest retained backup, with retention at its limit,
// completes and that backup remains; safety snapshots do not push regular backups out of keepLast and expire after
// keepSafetySnapshotsDays; a backup pinned by a running restore (here one into staging, under another lock) is
// never pruned, and is once the restore has ended.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/catalog';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { backupResult, startBackup } from '../../src/operations/backup';
import { restoreReport, startRestore } from '../../src/operations/restore';
import { TEST_REQUESTER, startApprovedRestore } from '../support/approved-restore';
import { createDependencies } from '../../src/runtime/dependencies';
import { backupKey, pinsPrefix } from '../../src/storage';
import type { RestoreReport } from '../../workflows/restore-types';
import { createSandboxInstance, type SandboxInstance } from '../../sandbox/instance';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { until } from '../support/until';

describe('retention and restores', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let staging: SandboxInstance | undefined;

  beforeAll(async () => {
    f = await restoreFixture();
    await f.seed({ resources: 4, connectors: 1, auditEntries: 20, recordings: 8, recordingBytes: 2_000 });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
    await staging?.destroy();
    await f?.destroy();
  });

  it('restores the oldest retained backup (keepLast 2, keepDays 0) with a safety snapshot, keeps it, and keeps snapshots by their own rule', async () => {
    const config: Config = { ...f.config, retention: { keepLast: 2, keepDays: 0, keepSafetySnapshotsDays: 7 } };
    h = await temporalHarness(config);
    const deps = createDependencies(config);
    const deployment = config.deployment.name;
    const catalog = async () => (await listBackups(deps.locations(), deployment)).map((e) => e.backupId);
    const backup = (overrides = {}) => h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue })), overrides, config);

    const oldest = await backup();
    const newer = await backup();
    expect(await catalog()).toEqual([newer.backupId, oldest.backupId]);

    // Production restore of the older one: its safety snapshot is a full backup whose prune runs while it waits.
    const report = await h.withWorker(async () => {
      const handle = await startApprovedRestore(h.client, config, { backupId: oldest.backupId, taskQueue: h.taskQueue });
      return (await handle.result()) as RestoreReport;
    }, {}, config);
    expect(report.status).toBe('completed');
    expect(report.verify!.found).toEqual(report.verify!.expected);
    const snapshot = report.safetySnapshotId!;
    expect(snapshot).toMatch(/^\d{8}T\d{6}Z-/);
    expect(await catalog()).toEqual([snapshot, newer.backupId, oldest.backupId]);
    for (const location of deps.locations()) expect(await location.exists(backupKey(deployment, oldest.backupId, 'db.dump.enc'))).toBe(true);
    // The restore's pin went with it.
    for (const location of deps.locations()) {
      const left: string[] = [];
      for await (const item of location.list(pinsPrefix(deployment))) left.push(item.key);
      expect(left).toEqual([]);
    }

    // A regular backup: keepLast counts regular backups only, so the snapshot pushes nothing out but the oldest.
    const third = await backup();
    expect(third.pruned!.removed).toEqual([oldest.backupId]);
    expect(await catalog()).toEqual([third.backupId, snapshot, newer.backupId]);

    // Eight days later by the activities' clock: the snapshot is past keepSafetySnapshotsDays.
    const later = await backup({ now: () => new Date(Date.now() + 8 * 86_400_000) });
    expect(later.pruned!.removed.sort()).toEqual([snapshot, newer.backupId].sort());
    expect(await catalog()).toEqual([later.backupId, third.backupId]);
  });

  it('never prunes a backup a running restore has pinned, and prunes it once that restore has ended', async () => {
    staging = await createSandboxInstance({ name: `st-${randomBytes(3).toString('hex')}` });
    const config = parseConfig({ ...f.config, staging: staging.deployment, retention: { keepLast: 1, keepDays: 0, keepSafetySnapshotsDays: 7 } });
    const deps = createDependencies(config);
    const deployment = config.deployment.name;
    const catalog = async () => (await listBackups(deps.locations(), deployment)).map((e) => e.backupId);
    await h.withWorker(async () => {
      const newest = (await listBackups(deps.locations(), deployment))[0]!.backupId;
      // A restore into staging holds staging's lock, not production's: production backups and prunes go on.
      const handle = await startRestore(h.client, config, { backupId: newest, target: 'staging', taskQueue: h.taskQueue, principal: TEST_REQUESTER });
      await until(async () => ((await restoreReport(h.client, handle.workflowId)).status === 'awaiting-confirmation' ? true : undefined), 'the staging restore to wait for confirmation');

      const next = await backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue }));
      expect(next.pruned!.removed).not.toContain(newest);
      expect(next.pruned!.keptForPins).toEqual([newest]);
      expect(await catalog()).toEqual([next.backupId, newest]);

      await handle.cancel();
      await expect(handle.result()).rejects.toThrow();
      const after = await backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue }));
      expect(after.pruned!.removed.sort()).toEqual([next.backupId, newest].sort());
      expect(await catalog()).toEqual([after.backupId]);
    }, {}, config);
  });
});
