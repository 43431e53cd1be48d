// The HTTP API against the real dev server: a credential required, body validation that changes nothing, preflight through a worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { apiCaller, apiSectionFor } from '../support/api-callers';

const caller = apiCaller('api-tester');

describe('HTTP API', () => {
  let h: TemporalHarness;
  let app: ReturnType<typeof buildApi>;
  beforeAll(async () => {
    h = await temporalHarness(isolatedConfig(() => ({ api: apiSectionFor(caller) })));
    app = buildApi({ config: h.config, client: h.client, taskQueue: h.taskQueue });
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('answers /healthz without a token and refuses other routes without the right one', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const none = await app.inject({ method: 'POST', url: '/v1/preflight', payload: {} });
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('VPB_ERR_UNAUTHORIZED');
    const wrong = await app.inject({ method: 'POST', url: '/v1/preflight', payload: {}, headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
  });

  it('rejects a bad body with the field named, before starting any workflow', async () => {
    const before = await h.client.workflow.count(`TaskQueue = "${h.taskQueue}"`);
    const res = await app.inject({ method: 'POST', url: '/v1/preflight', payload: { target: 'moon', extra: 1 }, headers: caller.headers });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VPB_ERR_INPUT_INVALID');
    expect(res.json().error.message).toMatch(/target/);
    const after = await h.client.workflow.count(`TaskQueue = "${h.taskQueue}"`);
    expect(after.count).toBe(before.count);
  });

  it('runs preflight through Temporal and a worker, over a real socket', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const res = await h.withWorker(() =>
      fetch(`${url}/v1/preflight`, { method: 'POST', headers: { ...caller.headers, 'content-type': 'application/json' }, body: '{"target":"production","allowNoBackup":true}' }),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; workflowId: string; checks: unknown[] };
    expect(body.ok).toBe(true);
    expect(body.workflowId).toMatch(/^preflight-sandbox-/);
    expect(body.checks.length).toBeGreaterThanOrEqual(6);
  });

  const auth = caller.headers;

  it('refuses a second backup while one runs, naming the running workflow', async () => {
    // No worker polls yet: the first backup stays running, so the second request must be refused.
    const first = await app.inject({ method: 'POST', url: '/v1/backups', payload: { reason: 'first' }, headers: auth });
    expect(first.statusCode).toBe(202);
    const { workflowId } = first.json() as { workflowId: string };
    expect(workflowId).toBe(`backup-${h.config.deployment.name}`);
    const second = await app.inject({ method: 'POST', url: '/v1/backups', payload: { reason: 'second' }, headers: auth });
    expect(second.statusCode).toBe(409);
    expect(second.json().error.code).toBe('VPB_ERR_BACKUP_RUNNING');
    expect(second.json().error.message).toContain(workflowId);
    // The first one then runs to completion once a worker is there, and the catalog lists it.
    const result = await h.withWorker(() => h.client.workflow.getHandle(workflowId).result());
    const list = await app.inject({ method: 'GET', url: '/v1/backups', headers: auth });
    expect(list.statusCode).toBe(200);
    const backups = (list.json() as { backups: { backupId: string; locations: string[] }[] }).backups;
    expect(backups.map((b) => b.backupId)).toContain((result as { backupId: string }).backupId);
    const status = await app.inject({ method: 'GET', url: '/v1/backups/status', headers: auth });
    expect(status.json()).toMatchObject({ workflowStatus: 'COMPLETED', status: 'committed', step: 'done' });
  });

  it('describes itself in OpenAPI from the same schemas that validate the bodies', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/backups', '/v1/restores', '/v1/restores/{workflowId}/confirm']));
    const confirm = doc.paths['/v1/restores/{workflowId}/confirm']!.post!.requestBody!.content['application/json']!.schema;
    expect(Object.keys(confirm.properties)).toEqual(['backupId', 'lossReportDigest', 'acceptUnrecoverable', 'breakGlass']);
  });

  it('rejects bad backup and verify requests with the field named', async () => {
    const bad = await app.inject({ method: 'POST', url: '/v1/backups', payload: { deep: 'yes', colour: 'red' }, headers: auth });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/deep/);
    const badId = await app.inject({ method: 'POST', url: '/v1/backups/not-an-id/verify', payload: {}, headers: auth });
    expect(badId.statusCode).toBe(400);
    expect(badId.json().error.message).toMatch(/not a backup id/);
  });
});
