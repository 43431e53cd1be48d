// The restore workflow on the real stack: bulk deletion undone, confirmation enforced, and a failed restore rolled
// back to exactly the state before it (tables, recordings with ETags, connectors).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupResult, startBackup } from '../../src/operations/backup';
import { runAuditCheck } from '../../src/operations/audit';
import { confirmRestore, restoreReport, startRestore } from '../../src/operations/restore';
import { TEST_APPROVER, TEST_REQUESTER, startApprovedRestore } from '../support/approved-restore';
import { databaseExists, dropDatabase } from '../../src/postgres';
import type { RestoreReport } from '../../workflows/restore-types';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { until } from '../support/until';

describe('restore workflow', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 30, auditEntries: 300, recordings: 40, recordingBytes: 8_000 });
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the accident' })))).backupId;
  }, 180_000);
  afterAll(async () => {
    await h?.close();
    await f?.destroy();
  });

  it('undoes an accidental bulk deletion once the loss report is confirmed; wrong answers are refused', async () => {
    const resources = ((await f.api('GET', '/resources?limit=100')).json as { resources: { id: string }[] }).resources;
    for (const r of resources.slice(0, 12)) expect((await f.api('DELETE', `/resources/${r.id}`)).status).toBe(200);
    const afterAccident = await f.fingerprint();
    expect(afterAccident.counts.resources).toBe(resources.length - 12);

    await h.withWorker(async () => {
      const handle = await startRestore(h.client, f.config, { backupId, reason: 'bulk deletion', taskQueue: h.taskQueue, principal: TEST_REQUESTER });
      const waiting = await until(async () => {
        const r = await restoreReport(h.client, handle.workflowId);
        return r.status === 'awaiting-confirmation' ? r : undefined;
      }, 'the confirmation prompt');
      expect(waiting.lossReport!.auditEntries).toBeGreaterThanOrEqual(12);
      expect(waiting.backup!.backupId).toBe(backupId);

      await expect(confirmRestore(h.client, f.config, handle.workflowId, { backupId: '20990101T000000Z-000000', lossReportDigest: waiting.lossReportDigest!, principal: TEST_APPROVER })).rejects.toThrow(/wrong backup id/);
      await expect(confirmRestore(h.client, f.config, handle.workflowId, { backupId, lossReportDigest: 'f'.repeat(64), principal: TEST_APPROVER })).rejects.toThrow(/digest does not match/);
      // Refused answers changed nothing.
      expect((await restoreReport(h.client, handle.workflowId)).status).toBe('awaiting-confirmation');
      expect(await f.fingerprint()).toEqual(afterAccident);

      await confirmRestore(h.client, f.config, handle.workflowId, { backupId, lossReportDigest: waiting.lossReportDigest!, principal: TEST_APPROVER });
      const report = (await handle.result()) as RestoreReport;
      expect(report.status).toBe('completed');
      expect(report.verify!.found).toEqual(report.verify!.expected);
      expect(report.verify!.expected.resources).toBe(resources.length);
      expect(report.smokeTest!.sessionId).toBeTruthy();
      expect(report.rtoMs).toBeGreaterThan(0);
      expect(report.safetySnapshotId).toMatch(/^\d{8}T\d{6}Z-/);
    });
    const restored = await f.fingerprint();
    expect(restored.counts.resources).toBe(resources.length);
  });

  it('ends an unconfirmed restore with nothing changed', async () => {
    const before = await f.fingerprint();
    await h.withWorker(async () => {
      const handle = await startRestore(h.client, f.config, { backupId, confirmTimeout: '3 seconds', taskQueue: h.taskQueue, principal: TEST_REQUESTER });
      await expect(handle.result()).rejects.toThrow();
      const report = await restoreReport(h.client, handle.workflowId).catch(() => undefined);
      expect(report?.status ?? 'not-confirmed').toBe('not-confirmed');
    });
    expect(await f.fingerprint()).toEqual(before);
  });

  it('rolls a failed restore back to exactly the state before it (smoke test failing after the swap)', async () => {
    // Operators kept working after the backup: a new resource, recordings and audit entries that a rollback must keep.
    await f.seed({ organisations: 0, resources: 2, connectors: 1, auditEntries: 20, recordings: 5, recordingBytes: 4_000 });
    const before = await f.fingerprint();
    const broken = { ...f.config, deployment: { ...f.config.deployment, controlPlane: { ...f.config.deployment.controlPlane, smokeTestResourceId: 'res_does_not_exist' } } };
    await h.withWorker(
      async () => {
        const handle = await startApprovedRestore(h.client, broken, { backupId, taskQueue: h.taskQueue });
        const failure = await handle.result().then(
          () => undefined,
          (err: Error) => err,
        );
        expect((failure?.cause as Error | undefined)?.message).toMatch(/Every change was rolled back/);
        const report = await restoreReport(h.client, handle.workflowId);
        expect(report.status).toBe('rolled-back');
        expect(report.rollback!.every((r) => r.ok)).toBe(true);
        expect(report.rollback!.map((r) => r.step)).toEqual([
          're-import the previous connectors',
          'stop the control plane again',
          'put quarantined recordings back',
          'swap the previous database back',
          'start the control plane',
        ]);
        expect(report.error).toMatch(/res_does_not_exist/);
        // The rollback is in the audit trail; the restored VaultPAM's own log is written only for a completed restore.
        expect(report.audit).toEqual({ trail: { recorded: true } });
        const audit = await runAuditCheck(broken);
        expect(audit.ok).toBe(true);
        expect(audit.entries.filter((e) => e.details.restoreId === report.restoreId).map((e) => e.kind)).toEqual(['restore.requested', 'restore.confirmed', 'restore.rolled-back']);
      },
      {},
      broken,
    );
    expect(await f.fingerprint()).toEqual(before);
    const pg = f.config.deployment.postgres;
    const report = await restoreReport(h.client, `restore-${f.config.deployment.name}`);
    const set = (report.restoreId.match(/[0-9a-f]{8}$/) ?? [''])[0];
    expect(set).not.toBe('');
    // Nothing set aside remains: the live database is the one from before the restore.
    const { restoreDatabaseNames } = await import('../../activities/restore');
    const names = restoreDatabaseNames(pg.database, report.restoreId);
    expect(await databaseExists(pg, f.deps.postgresPassword('production'), names.previous)).toBe(false);
    expect(await databaseExists(pg, f.deps.postgresPassword('production'), names.restored)).toBe(false);
    // The restored database served between the restart and the failed smoke test: it is kept aside, and the report says so.
    expect(await databaseExists(pg, f.deps.postgresPassword('production'), names.rolledBack)).toBe(true);
    expect(report.rollback!.find((r) => r.step === 'swap the previous database back')?.note).toContain(names.rolledBack);
    await dropDatabase(pg, f.deps.postgresPassword('production'), names.rolledBack, { force: true });
    expect((await f.deps.controlPlane('production').health()).status).toBe('ok');
  });
});
