// The API's answers to wrong requests on the real dev server: unknown and malformed workflow ids are 404/400 with a
// clear body, a restore's report answers only for restore workflows, and a bounded fuzz of paths and bodies gets no 5xx.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { apiCaller, authenticatorFor } from '../support/api-callers';

const caller = apiCaller('api-errors-tester');
const auth = caller.headers;
const digest = 'a'.repeat(64);

/** A small deterministic generator (mulberry32): the same fuzz on every run, so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('API errors', () => {
  let h: TemporalHarness;
  let app: ReturnType<typeof buildApi>;
  beforeAll(async () => {
    h = await temporalHarness(isolatedConfig());
    app = buildApi({ config: h.config, client: h.client, authenticator: authenticatorFor(caller), taskQueue: h.taskQueue });
  });
  afterAll(async () => {
    await h?.client.workflow.getHandle(`backup-${h.config.deployment.name}`).terminate('test over').catch(() => undefined);
    await app?.close();
    await h?.close();
  });

  it('answers 404 for an unknown restore, on the report and on the confirmation, and 400 for a malformed id', async () => {
    const report = await app.inject({ method: 'GET', url: '/v1/restores/restore-no-such-deployment', headers: auth });
    expect(report.statusCode).toBe(404);
    expect(report.json().error).toEqual({ code: 'VPB_ERR_NOT_FOUND', message: expect.stringMatching(/restore restore-no-such-deployment.*no workflow has this id/) });

    const confirm = await app.inject({ method: 'POST', url: '/v1/restores/restore-no-such-deployment/confirm', payload: { backupId: '20261127T020000Z-1a2b3c', lossReportDigest: digest }, headers: auth });
    expect(confirm.statusCode).toBe(404);
    expect(confirm.json().error.code).toBe('VPB_ERR_NOT_FOUND');

    for (const url of ['/v1/restores/..%2F..', '/v1/restores/..%2F../confirm']) {
      const res = await app.inject({ method: url.endsWith('confirm') ? 'POST' : 'GET', url, payload: url.endsWith('confirm') ? { backupId: 'x', lossReportDigest: digest } : undefined, headers: auth });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code).toBe('VPB_ERR_INPUT_INVALID');
      expect(res.json().error.message).toMatch(/is not a workflow id/);
    }
  });

  it('answers a restore report only for restore workflows: a backup workflow id is 404', async () => {
    // A backup workflow that exists (no worker polls, so it just waits).
    const started = await app.inject({ method: 'POST', url: '/v1/backups', payload: { reason: 'exists' }, headers: auth });
    expect(started.statusCode).toBe(202);
    const { workflowId } = started.json() as { workflowId: string };
    const res = await app.inject({ method: 'GET', url: `/v1/restores/${workflowId}`, headers: auth });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.message).toMatch(new RegExp(`${workflowId} is a backupWorkflow, not a restore`));
    const confirm = await app.inject({ method: 'POST', url: `/v1/restores/${workflowId}/confirm`, payload: { backupId: '20261127T020000Z-1a2b3c', lossReportDigest: digest }, headers: auth });
    expect(confirm.statusCode).toBe(404);
  });

  it('answers no 5xx to a bounded fuzz of malformed paths and bodies, and every error has a code and a message', async () => {
    const next = random(20261201);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const ids = ['..%2F..', '%2e%2e', '%00', '%ZZ', '%', '.', '-', ' ', '%20', 'a'.repeat(300), '%F0%9F%92%A5', "x'y", 'x%22y', 'restore-%0Anewline', 'x;y', 'a/b', '%2F', '~', '\\', 'restore-none-0', '20261127T020000Z', '20261127T020000Z-zzzzzz'];
    const bodies = ['null', '[]', '"text"', '1', 'true', '{', '{"a":1}', '{"target":1}', '{"target":"moon"}', 'garbage', '{"backupId":"../.."}', '{"deep":"yes"}', '{"backupId":"20261127T020000Z-1a2b3c","at":"2026-11-27T00:00:00Z"}', '{"scope":{"x":1}}', '{"lossReportDigest":"zz","backupId":""}', `{"reason":"${'r'.repeat(600)}"}`, '{"tags":[1,2]}', '{"allowNoBackup":"yes"}', '{"__proto__":{"x":1}}', JSON.stringify({ a: [[[[[[[[1]]]]]]]] })];
    const requests: { method: 'GET' | 'POST'; url: string; body?: string; type?: string }[] = [];
    for (let i = 0; i < 60; i += 1) {
      const id = pick(ids);
      requests.push({ method: 'GET', url: pick([`/v1/restores/${id}`, `/v1/${id}`, `/v1/restores/${id}/${id}`, `/${id}`, `/v1/backups/${id}`]) });
    }
    for (let i = 0; i < 100; i += 1) {
      const id = pick(ids);
      const url = pick(['/v1/preflight', '/v1/restores', `/v1/restores/${id}/confirm`, `/v1/backups/${id}/verify`, '/v1/backups']);
      requests.push({ method: 'POST', url, body: pick(bodies), type: pick(['application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded']) });
    }
    for (let i = 0; i < 40; i += 1) {
      // Random printable and percent-encoded bytes in the id position.
      const raw = Array.from({ length: 1 + Math.floor(next() * 40) }, () => (next() < 0.3 ? `%${Math.floor(next() * 256).toString(16).padStart(2, '0')}` : String.fromCharCode(33 + Math.floor(next() * 94)))).join('').replace(/[#?]/g, '');
      requests.push({ method: pick(['GET', 'POST'] as const), url: `/v1/restores/${raw}${next() < 0.5 ? '/confirm' : ''}`, body: '{"backupId":"x","lossReportDigest":"' + digest + '"}', type: 'application/json' });
    }
    expect(requests.length).toBe(200);

    // What an HTTP client can put on the wire: characters outside a path's set percent-encoded ('%' itself kept, so
    // malformed escapes stay in); an unescaped backslash would turn "/\\x" into a host.
    const wire = (url: string) => url.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g, (c) => encodeURIComponent(c));
    const statuses = new Map<number, number>();
    for (const r of requests) {
      const res = await app.inject({ method: r.method, url: wire(r.url), headers: { ...auth, ...(r.type ? { 'content-type': r.type } : {}) }, ...(r.body !== undefined ? { payload: r.body } : {}) });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      expect(res.statusCode, `${r.method} ${r.url} ${r.body ?? ''}`).toBeLessThan(500);
      if (res.statusCode >= 400) {
        const error = (res.json() as { error?: { code?: unknown; message?: unknown } }).error;
        expect(error?.code, `${r.method} ${r.url}: ${res.body}`).toEqual(expect.stringMatching(/^VPB_ERR_/));
        expect(typeof error?.message).toBe('string');
      }
    }
    // The fuzz reached the handlers, not only the router.
    expect(statuses.get(400)).toBeGreaterThan(50);
    expect(statuses.get(404)).toBeGreaterThan(10);
  });
});
