// Who may call the API, on the real dev server: 401 and 403 bodies that say what is wrong, a role per route, API tokens
// (expired, revoked by editing the tokens file while the API runs), JWTs signed by a test key, identity from the credential.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app';
import { createAuthenticator } from '../../src/auth/authenticate';
import type { Role } from '../../src/auth/principal';
import { appendToken, revokeToken } from '../../src/auth/tokens-file';
import { isolatedConfig } from '../support/backup-fixture';
import { apiCaller, secretOf, type ApiCaller } from '../support/api-callers';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const ISSUER = 'https://idp.test.example';
const AUDIENCE = 'vaultpam-backup-api';

/** One caller per role, each holding that role alone (every role may also read). */
const callers: Record<Role, ApiCaller> = {
  viewer: apiCaller('victor', ['viewer']),
  operator: apiCaller('olivia', ['operator']),
  restorer: apiCaller('rita', ['restorer']),
  approver: apiCaller('april', ['approver']),
  admin: apiCaller('ada', ['admin']),
};
const expired = apiCaller('eve', ['viewer', 'operator'], { expiresAt: '2026-01-01T00:00:00.000Z' });
const digest = 'a'.repeat(64);
type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/**
 * Every route but /healthz and /openapi.json, with the role it needs and a request that, once past the role check,
 * is refused or answered by the handler without starting anything (so the allowed calls leave no workflow behind).
 */
const routes: { method: 'GET' | 'POST'; url: string; role: Role; payload?: object; allowed: number }[] = [
  { method: 'GET', url: '/metrics', role: 'viewer', allowed: 200 },
  { method: 'GET', url: '/v1/backups', role: 'viewer', allowed: 200 },
  { method: 'GET', url: '/v1/restores/restore-no-such-deployment', role: 'viewer', allowed: 404 },
  { method: 'GET', url: '/v1/checks/check-no-such-deployment', role: 'viewer', allowed: 400 },
  { method: 'POST', url: '/v1/preflight', role: 'operator', payload: { target: 'moon' }, allowed: 400 },
  { method: 'POST', url: '/v1/backups', role: 'operator', payload: { deep: 'very' }, allowed: 400 },
  { method: 'POST', url: '/v1/backups/not-an-id/verify', role: 'operator', payload: {}, allowed: 400 },
  { method: 'POST', url: '/v1/checks', role: 'operator', payload: { readDataSubset: '4/3' }, allowed: 400 },
  // No staging deployment in this configuration: the drill is refused by the handler.
  { method: 'POST', url: '/v1/restore-drills', role: 'operator', allowed: 400 },
  { method: 'POST', url: '/v1/restores', role: 'restorer', payload: {}, allowed: 400 },
  { method: 'POST', url: '/v1/restores/restore-no-such-deployment/confirm', role: 'approver', payload: { backupId: '20261127T020000Z-1a2b3c', lossReportDigest: digest }, allowed: 404 },
  // No worker polls this harness's task queue: the rotation is refused with 503 before it starts.
  { method: 'POST', url: '/v1/key-rotations', role: 'admin', allowed: 503 },
];

describe('API authentication and roles', () => {
  let h: TemporalHarness;
  let app: ReturnType<typeof buildApi>;
  let tokensFile: string;
  const fileUser = apiCaller('frank', ['viewer', 'operator']);
  let keys: KeyPair;
  let otherKeys: KeyPair;

  const jwt = async (claims: Record<string, unknown>, options: { issuer?: string; audience?: string; expiresIn?: string | number; key?: KeyPair['privateKey'] } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? AUDIENCE)
      .setSubject(String(claims.sub ?? 'jwt-user'))
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '5m')
      .sign(options.key ?? keys.privateKey);

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpb-api-auth-'));
    tokensFile = join(dir, 'api-tokens.json');
    appendToken(tokensFile, fileUser.entry);
    keys = await generateKeyPair('RS256');
    otherKeys = await generateKeyPair('RS256');
    const publicKeyFile = join(dir, 'idp.pem');
    writeFileSync(publicKeyFile, await exportSPKI(keys.publicKey));
    const config = isolatedConfig(() => ({
      staging: undefined,
      api: {
        host: '127.0.0.1',
        port: 8470,
        auth: { mode: 'tokens', tokens: [...Object.values(callers).map((c) => c.entry), expired.entry], tokensFile, jwt: { issuer: ISSUER, audience: AUDIENCE, publicKeyFile } },
      },
    }));
    h = await temporalHarness(config);
    app = buildApi({ config, client: h.client, taskQueue: h.taskQueue });
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  const call = (method: 'GET' | 'POST', url: string, headers: Record<string, string> = {}, payload?: object) =>
    app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : method === 'POST' ? { payload: {} } : {}) });

  it('serves /healthz and /openapi.json to anyone, and lists the 403 answer of every other route', async () => {
    expect((await call('GET', '/healthz')).statusCode).toBe(200);
    const doc = (await call('GET', '/openapi.json')).json() as { paths: Record<string, Record<string, { responses: Record<string, unknown>; summary: string }>> };
    for (const route of routes) {
      const path = route.url.replace('restore-no-such-deployment', '{workflowId}').replace('check-no-such-deployment', '{workflowId}').replace('not-an-id', '{backupId}');
      const operation = doc.paths[path]?.[route.method.toLowerCase()];
      expect(operation?.responses, path).toHaveProperty('403');
      expect(operation?.summary, path).toContain(`(role: ${route.role})`);
    }
  });

  it('answers 401 saying exactly what is wrong with the credential, never echoing its secret', async () => {
    const unauthorized = async (headers: Record<string, string>, message: RegExp) => {
      const res = await call('GET', '/v1/backups', headers);
      expect(res.statusCode, JSON.stringify(headers)).toBe(401);
      expect(res.json().error.code).toBe('VPB_ERR_UNAUTHORIZED');
      expect(res.json().error.message).toMatch(message);
      return res.json().error.message as string;
    };
    await unauthorized({}, /^VPB_ERR_UNAUTHORIZED: Not authenticated: no Authorization header: send "Authorization: Bearer <token>"/);
    await unauthorized({ authorization: 'Basic dXNlcjpwYXNz' }, /the Authorization header is not "Bearer <token>"/);
    const unknown = apiCaller('nobody');
    const message = await unauthorized(unknown.headers, new RegExp(`unknown token id ${unknown.entry.id}: no such token is configured`));
    expect(message).not.toContain(secretOf(unknown.token));
    await unauthorized(expired.headers, new RegExp(`token ${expired.entry.id} expired \\(at 2026-01-01T00:00:00.000Z\\)`));
    const wrongSecret = `vpb_${callers.admin.entry.id}_${'A'.repeat(43)}`;
    await unauthorized({ authorization: `Bearer ${wrongSecret}` }, new RegExp(`token ${callers.admin.entry.id}: the secret does not match`));

    // Without a JWT issuer configured, a bearer token that is not an API token is refused as such.
    const tokensOnly = buildApi({ config: h.config, client: h.client, taskQueue: h.taskQueue, authenticator: createAuthenticator({ mode: 'tokens', tokens: [callers.viewer.entry] }) });
    const res = await tokensOnly.inject({ method: 'GET', url: '/v1/backups', headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.e30.' } });
    await tokensOnly.close();
    expect(res.statusCode).toBe(401);
    expect(res.json().error.message).toMatch(/the bearer token is not an API token \(vpb_<id>_<secret>\) and no JWT issuer is configured \(api\.auth\.jwt\)/);
  });

  it('lets each role through to the routes that need it, and answers 403 to the others naming principal, role and roles held', async () => {
    for (const [held, caller] of Object.entries(callers) as [Role, ApiCaller][]) {
      for (const route of routes) {
        const res = await call(route.method, route.url, caller.headers, route.payload);
        const label = `${caller.principal} (${held}) ${route.method} ${route.url}`;
        if (route.role === held || route.role === 'viewer') {
          expect(res.statusCode, `${label}: ${res.body}`).toBe(route.allowed);
          if (res.statusCode >= 400) expect(res.json().error.code, label).not.toMatch(/UNAUTHORIZED|FORBIDDEN/);
        } else {
          expect(res.statusCode, `${label}: ${res.body}`).toBe(403);
          const pattern = route.url.replace(/restore-no-such-deployment/, ':workflowId').replace(/check-no-such-deployment/, ':workflowId').replace('not-an-id', ':backupId');
          expect(res.json().error, label).toEqual({
            code: 'VPB_ERR_FORBIDDEN',
            message: `VPB_ERR_FORBIDDEN: Principal ${caller.principal} may not ${route.method} ${pattern}: it needs the role ${route.role} and holds ${held}`,
          });
        }
      }
    }
  });

  it('refuses a token revoked by editing the tokens file, without restarting the API', async () => {
    expect((await call('GET', '/v1/backups', fileUser.headers)).statusCode).toBe(200);
    revokeToken(tokensFile, fileUser.entry.id, new Date('2026-12-01T09:00:00Z'));
    const res = await call('GET', '/v1/backups', fileUser.headers);
    expect(res.statusCode).toBe(401);
    expect(res.json().error.message).toMatch(new RegExp(`token ${fileUser.entry.id} is revoked \\(since 2026-12-01T09:00:00.000Z\\)`));
    // And a token added to the file is accepted at once.
    const added = apiCaller('grace', ['viewer']);
    appendToken(tokensFile, added.entry);
    expect((await call('GET', '/v1/backups', added.headers)).statusCode).toBe(200);
  });

  it('accepts a JWT signed by the identity provider\'s key, with its principal and known roles', async () => {
    const token = await jwt({ sub: 'jane', roles: ['operator', 'viewer', 'payroll-admin'] });
    const headers = { authorization: `Bearer ${token}` };
    expect((await call('GET', '/v1/backups', headers)).statusCode).toBe(200);
    // An operator route: past the role check, the handler judges the body.
    expect((await call('POST', '/v1/backups', headers, { deep: 'very' })).statusCode).toBe(400);
    const refused = await call('POST', '/v1/restores', headers, {});
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.message).toMatch(/Principal jane may not POST \/v1\/restores: it needs the role restorer and holds operator, viewer$/);
    // Roles of other applications are ignored: a token with none of ours is refused with 403.
    const foreign = await call('GET', '/v1/backups', { authorization: `Bearer ${await jwt({ sub: 'joe', roles: 'payroll-admin hr' })}` });
    expect(foreign.statusCode).toBe(403);
    expect(foreign.json().error.message).toMatch(/Principal joe may not GET \/v1\/backups: it needs the role viewer and holds none/);
  });

  it('refuses a JWT that is expired, from another issuer or audience, or signed by another key, with jose\'s reason', async () => {
    const refused = async (token: string, message: RegExp) => {
      const res = await call('GET', '/v1/backups', { authorization: `Bearer ${token}` });
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toEqual({ code: 'VPB_ERR_UNAUTHORIZED', message: expect.stringMatching(message) });
    };
    const claims = { sub: 'jane', roles: ['viewer'] };
    await refused(await jwt(claims, { expiresIn: Math.floor(Date.now() / 1000) - 60 }), /JWT invalid: the JWT expired \(at \d{4}-.*Z\)/);
    await refused(await jwt(claims, { issuer: 'https://evil.example' }), /JWT invalid: the JWT's issuer is "https:\/\/evil\.example", not the configured api\.auth\.jwt\.issuer/);
    await refused(await jwt(claims, { audience: 'another-api' }), /JWT invalid: the JWT's audience is "another-api", not the configured api\.auth\.jwt\.audience/);
    await refused(await jwt(claims, { key: otherKeys.privateKey }), /JWT invalid: the JWT signature does not verify against the configured key/);
    await refused('not.a.jwt', /JWT invalid/);
  });

  it('refuses requestedBy and confirmedBy in a body: identity comes from the credential', async () => {
    const before = await h.client.workflow.count(`TaskQueue = "${h.taskQueue}"`);
    const backup = await call('POST', '/v1/backups', callers.operator.headers, { reason: 'x', requestedBy: 'mallory' });
    expect(backup.statusCode).toBe(400);
    expect(backup.json().error).toEqual({ code: 'VPB_ERR_INPUT_INVALID', message: expect.stringMatching(/requestedBy is not accepted: identity comes from the credential/) });
    const restore = await call('POST', '/v1/restores', callers.restorer.headers, { backupId: '20261127T020000Z-1a2b3c', requestedBy: 'mallory' });
    expect(restore.statusCode).toBe(400);
    expect(restore.json().error.message).toMatch(/requestedBy is not accepted/);
    const confirm = await call('POST', '/v1/restores/restore-no-such-deployment/confirm', callers.approver.headers, { backupId: '20261127T020000Z-1a2b3c', lossReportDigest: digest, confirmedBy: 'mallory' });
    expect(confirm.statusCode).toBe(400);
    expect(confirm.json().error.message).toMatch(/confirmedBy is not accepted: identity comes from the credential/);
    expect((await h.client.workflow.count(`TaskQueue = "${h.taskQueue}"`)).count).toBe(before.count);
  });

  it('records the caller of a backup started through the API as its requestedBy', async () => {
    const started = await call('POST', '/v1/backups', callers.operator.headers, { reason: 'who asked' });
    expect(started.statusCode).toBe(202);
    const { workflowId } = started.json() as { workflowId: string };
    const handle = h.client.workflow.getHandle(workflowId);
    const result = (await h.withWorker(() => handle.result())) as { backupId: string };
    const list = (await call('GET', '/v1/backups', callers.viewer.headers)).json() as { backups: { backupId: string; manifest: { requestedBy?: string } }[] };
    expect(list.backups.find((b) => b.backupId === result.backupId)?.manifest.requestedBy).toBe('olivia');
  });

  it('serves every route without a credential in development mode, as "developer"', async () => {
    const dev = buildApi({ config: h.config, client: h.client, taskQueue: h.taskQueue, authenticator: createAuthenticator({ mode: 'development' }) });
    const res = await dev.inject({ method: 'POST', url: '/v1/restores', payload: {} });
    await dev.close();
    // Past authentication and the restorer role: the body is judged.
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/backupId/);
  });
});
