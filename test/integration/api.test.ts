// The HTTP API against the real dev server: auth, body validation that changes nothing, preflight through a worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const TOKEN = 'test-api-token-0123456789';

describe('HTTP API', () => {
  let h: TemporalHarness;
  let app: ReturnType<typeof buildApi>;
  beforeAll(async () => {
    h = await temporalHarness();
    app = buildApi({ config: h.config, client: h.client, token: TOKEN, taskQueue: h.taskQueue });
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
    const res = await app.inject({ method: 'POST', url: '/v1/preflight', payload: { target: 'moon', extra: 1 }, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VPB_ERR_INPUT_INVALID');
    expect(res.json().error.message).toMatch(/target/);
    const after = await h.client.workflow.count(`TaskQueue = "${h.taskQueue}"`);
    expect(after.count).toBe(before.count);
  });

  it('runs preflight through Temporal and a worker, over a real socket', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const res = await h.withWorker(() =>
      fetch(`${url}/v1/preflight`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"target":"production"}' }),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; workflowId: string; checks: unknown[] };
    expect(body.ok).toBe(true);
    expect(body.workflowId).toMatch(/^preflight-sandbox-/);
    expect(body.checks.length).toBeGreaterThanOrEqual(6);
  });
});
