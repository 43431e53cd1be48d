// A scoped restore on the real stack: one deleted resource comes back with its Safes, credentials and recordings while
// the control plane keeps running and everything created after the backup stays; an unknown resource changes nothing.
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupResult, startBackup } from '../../src/operations/backup';
import { restoreReport } from '../../src/operations/restore';
import { startApprovedRestore } from '../support/approved-restore';
import { withClient } from '../../src/postgres';
import type { RestoreReport } from '../../workflows/restore-types';
import { observedServiceControl, restoreFixture, watchHealth, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';



interface ResourceDetail {
  id: string;
  updatedAt: string;
  safes: { id: string; name: string; credentials: { id: string; username: string; version: number; rotatedAt: string | null }[] }[];
}

describe('restore of one resource', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;

  const sql = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) =>
    withClient(f.config.deployment.postgres, f.deps.postgresPassword('production'), async (c) => (await c.query<T>(text, params)).rows);

  /** Recording objects (key -> ETag) of the sessions the database lists for the resource. */
  async function recordingsOf(resourceId: string): Promise<Map<string, string | undefined>> {
    const client = f.deps.recordingsClient('production');
    const keys = await sql<{ recording_key: string }>('SELECT recording_key FROM sessions WHERE resource_id = $1 ORDER BY recording_key', [resourceId]);
    const found = new Map<string, string | undefined>();
    for (const { recording_key: key } of keys) {
      found.set(key, (await client.statObject(f.config.deployment.recordings.bucket, key).catch(() => undefined))?.etag);
    }
    return found;
  }

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 12, auditEntries: 200, recordings: 48, recordingBytes: 4_000 });
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the deletion' })))).backupId;
  }, 240_000);
  afterAll(async () => {
    await h?.close();
    await f?.destroy();
  });

  it('brings back the deleted resource with its Safes, credentials and recordings, keeps newer data, and stops nothing', async () => {
    // The resource with the most recorded sessions, so its recordings matter; another one keeps being used.
    const [victim, bystander] = await sql<{ resource_id: string; n: string }>(
      'SELECT resource_id, count(*)::text AS n FROM sessions GROUP BY resource_id ORDER BY count(*) DESC, resource_id LIMIT 2',
    );
    const resourceId = victim!.resource_id;
    const detailBefore = (await f.api('GET', `/resources/${resourceId}`)).json as ResourceDetail;
    expect(detailBefore.safes.length).toBeGreaterThan(0);
    const secretsQuery = 'SELECT c.id, c.secret, c.version FROM credentials c JOIN safes s ON s.id = c.safe_id WHERE s.resource_id = $1 ORDER BY c.id';
    const secretsBefore = await sql(secretsQuery, [resourceId]);
    const recordingsBefore = await recordingsOf(resourceId);
    expect(recordingsBefore.size).toBe(Number(victim!.n));
    expect([...recordingsBefore.values()].every((etag) => etag !== undefined)).toBe(true);

    // The accident: the resource deleted, and (as a cleanup job might) its recordings removed from the bucket.
    expect((await f.api('DELETE', `/resources/${resourceId}`)).status).toBe(200);
    expect((await f.api('GET', `/resources/${resourceId}`)).status).toBe(404);
    await f.deps.recordingsClient('production').removeObjects(f.config.deployment.recordings.bucket, [...recordingsBefore.keys()]);

    // Work done after the backup, which a scoped restore must keep.
    const created = await f.api('POST', '/resources', { name: 'after-the-backup', kind: 'ssh', address: '10.99.0.1:22', safes: [{ name: 'ops', credentials: [{ username: 'ops1' }] }] });
    expect(created.status).toBe(201);
    const newer = created.json as ResourceDetail;
    const launches: { sessionId: string; recordingKey: string }[] = [];
    for (const target of [bystander!.resource_id, newer.id]) {
      const launched = await f.api('POST', '/sessions', { resourceId: target });
      expect(launched.status).toBe(201);
      launches.push(launched.json as { sessionId: string; recordingKey: string });
    }
    const newerDetail = (await f.api('GET', `/resources/${newer.id}`)).json as ResourceDetail;
    const statsBefore = await f.deps.controlPlane('production').stats();

    const service = observedServiceControl(f);
    const health = watchHealth(f);
    const started = Date.now();
    const report = await h.withWorker(async () => {
      const handle = await startApprovedRestore(h.client, f.config, { backupId, scope: { kind: 'resource', resourceId }, reason: 'resource deleted by mistake', taskQueue: h.taskQueue });
      return (await handle.result()) as RestoreReport;
    }, service.overrides);
    const elapsed = Date.now() - started;
    const watched = await health.stop();
    console.info(`scoped restore of ${resourceId}: ${(elapsed / 1000).toFixed(1)} s, ${report.recordings?.restored} recordings put back, ${watched.checks} health checks`);

    expect(report.status).toBe('completed');
    expect(report.scope).toEqual({ kind: 'resource', resourceId });
    expect(report.backup!.backupId).toBe(backupId);
    expect(report.smokeTest!.sessionId).toBeTruthy();
    // Never stopped: no stop or start command ran, and /healthz answered ok all along.
    expect(service.calls).toEqual([]);
    expect(report.previousDatabase).toBeUndefined();
    expect(report.rtoMs).toBeUndefined();
    expect(watched.checks).toBeGreaterThan(0);
    expect(watched.problems).toEqual([]);

    // The resource as it was, Safes and credentials (secrets and versions included); only updatedAt records the restore.
    const detailAfter = (await f.api('GET', `/resources/${resourceId}`)).json as ResourceDetail;
    expect({ ...detailAfter, updatedAt: undefined }).toEqual({ ...detailBefore, updatedAt: undefined });
    expect(await sql(secretsQuery, [resourceId])).toEqual(secretsBefore);
    // Its recordings are back in the bucket, byte for byte (same ETag).
    expect(report.recordings!.restored).toBe(recordingsBefore.size);
    // The smoke test may have launched its session on this very resource: its new recording is not the backup's.
    const after = await recordingsOf(resourceId);
    for (const key of after.keys()) if (key.includes(report.smokeTest!.sessionId)) after.delete(key);
    expect(after).toEqual(recordingsBefore);

    // What came after the backup is all still there.
    expect((await f.api('GET', `/resources/${newer.id}`)).json).toEqual(newerDetail);
    const sessionIds = launches.map((l) => l.sessionId);
    expect((await sql<{ id: string }>('SELECT id::text AS id FROM sessions WHERE id = ANY($1::uuid[]) ORDER BY id', [sessionIds])).map((r) => r.id)).toEqual([...sessionIds].sort());
    for (const launch of launches) expect(await f.deps.recordingsClient('production').statObject(f.config.deployment.recordings.bucket, launch.recordingKey)).toBeDefined();
    const statsAfter = await f.deps.controlPlane('production').stats();
    expect(statsAfter.resources).toBe(statsBefore.resources + 1);
    expect(statsAfter.safes).toBe(statsBefore.safes + detailBefore.safes.length);
    expect(statsAfter.credentials).toBe(statsBefore.credentials + secretsBefore.length);
    // The resource's sessions were history rows that outlived its deletion; the smoke test added one.
    expect(statsAfter.sessions).toBe(statsBefore.sessions + 1);
  });

  it('refuses a resource the backup does not hold, clearly, and changes nothing', async () => {
    const missing = 'res_0000000000000000';
    const before = await f.fingerprint();
    const service = observedServiceControl(f);
    let failure: unknown;
    let workflowId = '';
    await h.withWorker(async () => {
      const handle = await startApprovedRestore(h.client, f.config, { backupId, scope: { kind: 'resource', resourceId: missing }, taskQueue: h.taskQueue });
      workflowId = handle.workflowId;
      failure = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
    }, service.overrides);

    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const message = ((failure as WorkflowFailedError).cause as Error).message;
    expect(message).toMatch(new RegExp(`resource "${missing}" is not in the backup`));
    expect(message).toMatch(/nothing was changed/);
    const report = await restoreReport(h.client, workflowId);
    expect(report.status).toBe('rolled-back');
    expect(report.rollback).toEqual([]);
    expect(report.error).toMatch(/VPB_ERR_RESTORE_RESOURCE_NOT_IN_BACKUP/);
    expect(service.calls).toEqual([]);
    expect(await f.fingerprint()).toEqual(before);
  });
});
