// A restore to a moment of point-in-time protection, on the real stack: the database, the recordings and the
// connectors come back as they were at a moment between two rounds of changes, through the ordinary restore (loss
// report, approvals, swap); a moment outside the covered window is refused naming the window, and changes nothing.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DUMP_MOMENT_FAULT_POINTS } from '../../activities/dump-moment';
import { DEFAULT_SCRATCH_ROOT } from '../../activities/recover-to-moment';
import { listBackups } from '../../src/catalog/catalog';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { scratchPaths } from '../../src/postgres/scratch-instance';
import { formatRestoreReport } from '../../src/cli/output';
import { listPoints } from '../../src/catalog/point-in-time-catalog';
import { CHECKPOINT_KIND, CONNECTOR_EXPORT_KIND } from '../../src/catalog/checkpoint-manifest';
import { readWalMark } from '../../src/catalog/wal-mark';
import { restoreReport } from '../../src/operations/restore';
import type { MomentBackupResult } from '../../workflows/moment-backup';
import type { protectWorkflow } from '../../workflows/protect';
import { protectWorkflowId } from '../../workflows/protect-types';
import type { RestoreReport } from '../../workflows/restore-types';
import { startApprovedRestore } from '../support/approved-restore';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { dropReplicationSlot, removeWalSpool } from '../support/replication-slot';
import { until } from '../support/until';
import { CRASH_TEST_TIMEOUTS, startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const slot = `moment_test_${randomBytes(4).toString('hex')}`;

interface Connector {
  id: string;
  name: string;
  kind: string;
  config: Record<string, unknown>;
  enabled: boolean;
}

describe('restore to a moment of point-in-time protection', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let worker: WorkerProcess;
  let protection: WorkflowHandle<typeof protectWorkflow>;
  let db: pg.Pool;
  /** Short heartbeats, so that a killed worker's activity is retried within seconds. */
  let workerConfig: Config;

  const deployment = () => f.config.deployment.name;
  const bucket = () => f.config.deployment.recordings.bucket;

  async function serverNow(): Promise<string> {
    return (await db.query<{ t: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`)).rows[0]!.t;
  }

  async function createResource(name: string): Promise<void> {
    const created = await f.api('POST', '/resources', { name, kind: 'ssh', address: `${name}.example.internal:22` });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
  }

  async function resourceNames(): Promise<string[]> {
    return (await db.query<{ name: string }>('SELECT name FROM resources ORDER BY name')).rows.map((r) => r.name);
  }

  async function connectorNames(): Promise<string[]> {
    const exported = (await f.api('GET', '/admin/connectors/export')).json as { connectors: Connector[] };
    return exported.connectors.map((c) => c.name).sort();
  }

  async function addConnector(name: string): Promise<void> {
    const exported = (await f.api('GET', '/admin/connectors/export')).json as { exportedAt: string; connectors: Connector[] };
    const imported = await f.api('POST', '/admin/connectors/import', {
      exportedAt: exported.exportedAt,
      connectors: [...exported.connectors, { id: `c-${name}`, name, kind: 'ssh-gateway', config: { host: `${name}.example.internal` }, enabled: true }],
    });
    expect(imported.status, JSON.stringify(imported.json)).toBe(200);
  }

  async function recordingKeys(): Promise<string[]> {
    const keys: string[] = [];
    for await (const o of f.deps.recordingsClient('production').listObjectsV2(bucket(), '', true) as AsyncIterable<{ name: string }>) keys.push(o.name);
    return keys.sort();
  }

  /** Waits until the protection has a checkpoint and an export (when `exportAfter`) and a WAL mark at or after `moment`. */
  async function coveredAfter(moment: string, what: { checkpoint?: boolean; export?: boolean; mark?: boolean }): Promise<void> {
    await until(
      async () => {
        const locations = f.deps.locations();
        const keyRing = f.deps.keyRing();
        if (what.checkpoint) {
          const checkpoints = await listPoints(locations, CHECKPOINT_KIND, deployment(), keyRing);
          if (!checkpoints.some((c) => c.manifest.coveredAt > moment && c.locations.length === locations.length)) return undefined;
        }
        if (what.export) {
          const exports = await listPoints(locations, CONNECTOR_EXPORT_KIND, deployment(), keyRing);
          if (!exports.some((e) => e.manifest.exportedAt > moment && e.locations.length === locations.length)) return undefined;
        }
        if (what.mark) {
          const marks = await Promise.all(locations.map((l) => readWalMark(l, deployment(), keyRing)));
          if (!marks.every((m) => m && m.time > moment)) return undefined;
        }
        return true;
      },
      `protection covering ${moment} (${Object.keys(what).join(', ')})`,
      120_000,
    );
  }

  beforeAll(async () => {
    f = await restoreFixture({ cluster: 'production', pointInTime: { enabled: true, slot, partialUploadSeconds: 1, baseBackupEveryHours: 1000 } });
    const pgConfig = f.config.deployment.postgres;
    db = new pg.Pool({ host: pgConfig.host, port: pgConfig.port, user: pgConfig.user, password: f.deps.postgresPassword('production'), database: pgConfig.database, max: 2 });
    db.on('error', () => undefined);
    await f.seed({ organisations: 1, usersPerOrg: 1, resources: 3, connectors: 1, auditEntries: 10, recordings: 2, recordingBytes: 2_000 });
    h = await temporalHarness(f.config);
    workerConfig = parseConfig({ ...f.config, timeouts: CRASH_TEST_TIMEOUTS });
    worker = await startWorkerProcess({ taskQueue: h.taskQueue, config: workerConfig, workflowBundlePath: inject('workflowBundlePath'), identity: 'moment' });
    protection = await h.client.workflow.start('protectWorkflow', {
      taskQueue: h.taskQueue,
      workflowId: protectWorkflowId(deployment()),
      args: [{ target: 'production', deployment: deployment(), baseBackupEveryHours: 1000, sliceSeconds: 4, partialUploadSeconds: 1, heartbeatSeconds: 10 }],
    });
  }, 180_000);

  afterAll(async () => {
    await protection?.terminate('test over').catch(() => undefined);
    await worker?.stop();
    await h?.close();
    if (!f) return;
    const admin = new pg.Client({ ...f.config.deployment.postgres, password: f.deps.postgresPassword('production'), database: 'postgres' });
    await admin.connect();
    await dropReplicationSlot(admin, slot);
    await admin.end();
    await db?.end();
    await f?.destroy();
    removeWalSpool(f.config, deployment(), slot);
  }, 120_000);

  it('refuses a moment before the covered window, naming the window, and changes nothing', async () => {
    await coveredAfter(await serverNow(), { mark: true });
    const before = await f.fingerprint();
    const anHourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const handle = await startApprovedRestore(h.client, f.config, { at: anHourAgo, taskQueue: h.taskQueue, confirmTimeout: '10 minutes', reason: 'too far back' });
    const report = await until(async () => {
      const r = await restoreReport(h.client, handle.workflowId).catch(() => undefined);
      return r && r.status !== 'running' ? r : undefined;
    }, 'the refusal');
    expect(report.status).toBe('refused');
    expect(report.error).toMatch(new RegExp(`${anHourAgo.replace(/[.]/g, '\\.')} is outside what point-in-time protection of ${deployment()} covers: the covered window is \\S+ to \\S+`));
    expect(report.error).toContain('--backup <id>');
    expect(await listBackups(f.deps.locations(), deployment())).toEqual([]);
    expect(await f.fingerprint()).toEqual(before);
  }, 180_000);

  it('brings back the database, the recordings and the connectors as they were at the moment', async () => {
    // Before the moment: a resource, a recording and a connector, each covered by the streams.
    await createResource('before-moment');
    await f.deps.recordingsClient('production').putObject(bucket(), 'sessions/before-moment.cast', Buffer.from('recorded before the moment'));
    await addConnector('gateway-before');
    await new Promise((r) => setTimeout(r, 1_100));
    const written = await serverNow();
    await coveredAfter(written, { checkpoint: true, export: true, mark: true });
    await new Promise((r) => setTimeout(r, 1_100));
    const moment = await serverNow();
    // The moment falls between two checkpoints' seconds: the bucket's clock gives whole seconds.
    await new Promise((r) => setTimeout(r, 1_500));

    // After it: the same three kinds of change, which the restore must undo.
    await createResource('after-moment');
    await f.deps.recordingsClient('production').putObject(bucket(), 'sessions/after-moment.cast', Buffer.from('recorded after the moment'));
    await addConnector('gateway-after');
    await coveredAfter(await serverNow(), { checkpoint: true, export: true, mark: true });
    expect(await resourceNames()).toEqual(expect.arrayContaining(['after-moment', 'before-moment']));

    const handle = await startApprovedRestore(h.client, f.config, { at: moment, taskQueue: h.taskQueue, confirmTimeout: '10 minutes', reason: 'undo what came after the moment' });
    let report: RestoreReport;
    try {
      report = (await handle.result()) as RestoreReport;
    } catch (err) {
      throw new Error(`the restore failed: ${JSON.stringify(await restoreReport(h.client, handle.workflowId).catch((e: Error) => e.message))} (${(err as Error).message})`);
    }
    expect(report.status).toBe('completed');
    expect(report.moment).toMatchObject({ at: new Date(moment).toISOString() });
    expect(report.backup!.backupId).toBe(report.moment!.backupId);
    // Both were placed on the database's clock, read beside their own, and selected by it.
    const made = await until(async () => (await listBackups(f.deps.locations(), deployment())).find((b) => b.backupId === report.moment!.backupId), 'the backup of the moment');
    const momentBackup = (await h.client.workflow.getHandle(`moment-${report.restoreId}`).result()) as MomentBackupResult;
    expect(Date.parse(momentBackup.selection.checkpoint.databaseAt!)).toBeLessThanOrEqual(Date.parse(moment));
    expect(Date.parse(momentBackup.selection.connectors.databaseAt!)).toBeLessThanOrEqual(Date.parse(moment));
    expect(Math.abs(Date.parse(momentBackup.selection.checkpoint.databaseAt!) - Date.parse(momentBackup.selection.checkpoint.coveredAt))).toBeLessThan(2_000);
    // The loss report counted the resource created after the moment as lost.
    expect(report.lossReport!.resources.created).toBe(1);
    expect(formatRestoreReport(report)).toContain(`moment           ${new Date(moment).toISOString()}: database from base ${report.moment!.baseId}`);

    const names = await resourceNames();
    expect(names).toContain('before-moment');
    expect(names).not.toContain('after-moment');
    const keys = await recordingKeys();
    expect(keys).toContain('sessions/before-moment.cast');
    expect(keys).not.toContain('sessions/after-moment.cast');
    const connectors = await connectorNames();
    expect(connectors).toContain('gateway-before');
    expect(connectors).not.toContain('gateway-after');

    // The moment's backup is in the catalog, tagged, and names what it was made from.
    expect(made?.manifest.tags).toContain('point-in-time');
    expect(made?.manifest.moment).toMatchObject({ checkpointId: report.moment!.checkpointId, exportId: report.moment!.exportId, baseId: report.moment!.baseId });
  }, 420_000);

  it('finishes a restore to a moment whose worker was killed with the scratch instance up, and leaves no instance behind', async () => {
    // The only worker dies right after the moment's dump is stored, its scratch PostgreSQL still running.
    await worker.stop();
    const faulty = await startWorkerProcess({ taskQueue: h.taskQueue, config: workerConfig, workflowBundlePath: inject('workflowBundlePath'), identity: 'moment-faulty' }, 60_000, { VAULTPAM_FAULT_POINT: DUMP_MOMENT_FAULT_POINTS.dumped });
    worker = faulty;
    await createResource('before-second-moment');
    await new Promise((r) => setTimeout(r, 1_100));
    await coveredAfter(await serverNow(), { checkpoint: true, mark: true });
    const moment = await serverNow();
    await new Promise((r) => setTimeout(r, 1_100));
    await createResource('after-second-moment');
    await coveredAfter(await serverNow(), { mark: true });

    const restoring = startApprovedRestore(h.client, f.config, { at: moment, taskQueue: h.taskQueue, confirmTimeout: '10 minutes', reason: 'a second moment' });
    expect((await faulty.exited).signal).toBe('SIGKILL');
    worker = await startWorkerProcess({ taskQueue: h.taskQueue, config: workerConfig, workflowBundlePath: inject('workflowBundlePath'), identity: 'moment-again' });
    const handle = await restoring;
    const report = (await handle.result()) as RestoreReport;
    expect(report.status).toBe('completed');
    expect(report.moment?.at).toBe(new Date(moment).toISOString());
    const names = await resourceNames();
    expect(names).toContain('before-second-moment');
    expect(names).not.toContain('after-second-moment');
    // The retry made the scratch instance again under the same id (stopping the one the dead worker left) and removed it.
    const scratchDir = scratchPaths(DEFAULT_SCRATCH_ROOT, `moment-${report.moment!.backupId.toLowerCase()}`).dir;
    expect(existsSync(scratchDir)).toBe(false);
    const left = spawnSync('pgrep', ['-f', scratchDir]);
    expect(left.stdout.toString().trim()).toBe('');
  }, 420_000);
});
