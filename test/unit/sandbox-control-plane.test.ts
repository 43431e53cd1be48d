// The sandbox's admin API through app.inject() where no database or S3 answer is needed: auth, maintenance, errors, config.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildControlPlane } from '../../sandbox/control-plane';
import { createPool } from '../../sandbox/database';
import { createRecordingsClient, recordingKey, renderRecording } from '../../sandbox/recordings';
import { SandboxConfigError, loadSandboxConfig, resolveSandboxConfig, type SandboxConfig } from '../../sandbox/sandbox-config';

const scratch = mkdtempSync(join(tmpdir(), 'sandbox-unit-'));
const token = 'unit-test-token-0123456789';
const auth = { authorization: `Bearer ${token}` };

// Port 1 on loopback: nothing listens there, so every database call fails fast the way a stopped server does.
const document = {
  name: 'unit',
  host: '127.0.0.1',
  port: 0,
  postgres: { host: '127.0.0.1', port: 1, database: 'none', user: 'nobody', passwordFile: join(scratch, 'pg-password') },
  s3: { endPoint: '127.0.0.1', port: 1, accessKey: 'nobody', secretKeyFile: join(scratch, 's3-secret'), bucket: 'recordings' },
  tokenFile: join(scratch, 'token'),
  stateDir: join(scratch, 'state'),
};

let config: SandboxConfig;
let app: FastifyInstance;
let db: ReturnType<typeof createPool>;

beforeAll(async () => {
  writeFileSync(document.postgres.passwordFile, 'pw\n');
  writeFileSync(document.s3.secretKeyFile, 'secret\n');
  writeFileSync(document.tokenFile, `${token}\n`);
  config = await resolveSandboxConfig(document);
  db = createPool(config);
  app = await buildControlPlane(config, { db, recordings: createRecordingsClient(config) });
});

afterAll(async () => {
  await app.close();
  await db.end();
  rmSync(scratch, { recursive: true, force: true });
});

describe('sandbox configuration', () => {
  it('reads the secrets it names, trimmed', () => {
    expect(config.token).toBe(token);
    expect(config.postgres.password).toBe('pw');
    expect(config.s3.secretKey).toBe('secret');
    expect(config.s3.useSSL).toBe(false);
  });

  it('names the field and the fix when the file is wrong', async () => {
    await expect(resolveSandboxConfig({ ...document, port: 'eighty' })).rejects.toThrow(/port/);
    await expect(resolveSandboxConfig({ ...document, extra: true })).rejects.toBeInstanceOf(SandboxConfigError);
    await expect(resolveSandboxConfig({ ...document, tokenFile: join(scratch, 'missing') })).rejects.toThrow(/tokenFile: cannot read .*ENOENT/);
    const notJson = join(scratch, 'broken.json');
    writeFileSync(notJson, '{');
    await expect(loadSandboxConfig(notJson)).rejects.toThrow(/is not JSON/);
  });
});

describe('sandbox recordings', () => {
  it('keys recordings by the UTC day of the session start', () => {
    expect(recordingKey('0b6f', new Date('2026-03-04T23:59:59.999-05:00'))).toBe('sessions/2026/03/05/0b6f.cast');
  });

  it('renders asciicast v2 of exactly the requested size, different every time', () => {
    const a = renderRecording('s', new Date(), 65_536);
    const b = renderRecording('s', new Date(), 65_536);
    expect(a.length).toBe(65_536);
    expect(a.equals(b)).toBe(false);
    const lines = a.toString('utf8').trimEnd().split('\n');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ version: 2 });
    for (const line of lines.slice(1)) expect(JSON.parse(line)).toEqual([expect.any(Number), 'o', expect.any(String)]);
  });
});

describe('sandbox admin API without a database', () => {
  it('answers 401 with the UNAUTHORIZED code for a missing, wrong or malformed token', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `bearer ${token} extra` }]) {
      const response = await app.inject({ method: 'GET', url: '/admin/maintenance', headers });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
    }
    expect((await app.inject({ method: 'GET', url: '/admin/maintenance', headers: auth })).statusCode).toBe(200);
  });

  it('answers 503 DATABASE_UNAVAILABLE from /healthz when the database is down', async () => {
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ error: { code: 'DATABASE_UNAVAILABLE' } });
  });

  it('keeps the maintenance flag writable (with no database) and refuses writes before touching anything', async () => {
    const enable = await app.inject({ method: 'POST', url: '/admin/maintenance', headers: auth, payload: { enabled: true, reason: 'restore' } });
    expect(enable.statusCode).toBe(200);
    expect(enable.json()).toMatchObject({ enabled: true, reason: 'restore', since: expect.any(String) });
    const write = await app.inject({ method: 'POST', url: '/resources', headers: auth, payload: { name: 'x', kind: 'ssh', address: 'h' } });
    expect(write.statusCode).toBe(503);
    expect(write.json()).toMatchObject({ error: { code: 'MAINTENANCE' } });
    const disable = await app.inject({ method: 'POST', url: '/admin/maintenance', headers: auth, payload: { enabled: false } });
    expect(disable.json()).toMatchObject({ enabled: false, reason: null });
  });

  it('validates bodies with messages that name the field', async () => {
    const response = await app.inject({ method: 'POST', url: '/admin/maintenance', headers: auth, payload: { enabled: 'yes' } });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: { code: 'INVALID_REQUEST', message: expect.stringContaining('body.enabled') } });
    const badKind = await app.inject({ method: 'POST', url: '/resources', headers: auth, payload: { name: 'x', kind: 'telnet', address: 'h' } });
    expect(badKind.statusCode).toBe(400);
    expect(badKind.json()).toMatchObject({ error: { code: 'INVALID_REQUEST', message: expect.stringContaining('body.kind') } });
    const text = await app.inject({ method: 'POST', url: '/admin/maintenance', headers: { ...auth, 'content-type': 'application/xml' }, payload: '<on/>' });
    expect(text.statusCode).toBe(415);
    expect(text.json()).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
  });

  it('answers ROUTE_NOT_FOUND for unknown routes once authenticated', async () => {
    const response = await app.inject({ method: 'GET', url: '/admin/nothing?x=1', headers: auth });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ error: { code: 'ROUTE_NOT_FOUND', message: 'no route GET /admin/nothing' } });
  });
});
