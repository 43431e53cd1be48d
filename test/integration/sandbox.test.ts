// The sandbox VaultPAM against the real PostgreSQL and S3 server, in a database and bucket of its own.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type * as Minio from 'minio';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorInventorySchema, statsSchema, type ConnectorInventory } from '../../sandbox/admin-api-schemas';
import { buildControlPlane } from '../../sandbox/control-plane';
import { applySchema, createPool } from '../../sandbox/database';
import { MaintenanceMode } from '../../sandbox/maintenance-mode';
import { createRecordingsClient, ensureBucket } from '../../sandbox/recordings';
import { resolveSandboxConfig, type SandboxConfig } from '../../sandbox/sandbox-config';
import { reset, seed, type SeedResult } from '../../sandbox/seed';
import { stackEnv } from '../support/stack-env';

const env = stackEnv();
const run = randomBytes(4).toString('hex');
const database = `sandbox_test_${run}`;
const bucket = `sandbox-test-${run}`;
const scratch = mkdtempSync(join(tmpdir(), 'sandbox-test-'));
const token = randomBytes(24).toString('hex');
const repoRoot = new URL('../..', import.meta.url).pathname;

/** The configuration file as scripts/stack.sh writes it, pointed at this test's database and bucket. */
const configDocument = {
  name: 'sandbox-test',
  host: '127.0.0.1',
  port: 0,
  postgres: { host: env.pg.host, port: env.pg.port, database, user: env.pg.user, passwordFile: env.pg.passwordFile },
  s3: { endPoint: env.s3.endPoint, port: env.s3.port, accessKey: env.s3.accessKey, secretKeyFile: env.s3.secretKeyFile, bucket },
  tokenFile: join(scratch, 'token'),
  stateDir: join(scratch, 'state'),
};

const admin = new pg.Pool({ host: env.pg.host, port: env.pg.port, user: env.pg.user, password: env.pg.password, database: 'postgres', max: 1 });
let config: SandboxConfig;
let db: pg.Pool;
let s3: Minio.Client;
let app: FastifyInstance;
let seeded: SeedResult;

const auth = { authorization: `Bearer ${token}` };

async function listKeys(): Promise<Map<string, { size: number; etag: string }>> {
  const keys = new Map<string, { size: number; etag: string }>();
  for await (const item of s3.listObjectsV2(bucket, '', true)) {
    if (typeof item.name === 'string') keys.set(item.name, { size: item.size, etag: item.etag });
  }
  return keys;
}

type RowCounts = Record<'resources' | 'safes' | 'credentials' | 'connectors' | 'audit_log' | 'sessions', number>;

async function rowCounts(): Promise<RowCounts> {
  const { rows } = await db.query<Record<keyof RowCounts, string>>(
    `SELECT (SELECT count(*) FROM resources) AS resources, (SELECT count(*) FROM safes) AS safes,
            (SELECT count(*) FROM credentials) AS credentials, (SELECT count(*) FROM connectors) AS connectors,
            (SELECT count(*) FROM audit_log) AS audit_log, (SELECT count(*) FROM sessions) AS sessions`,
  );
  const row = rows[0];
  if (!row) throw new Error('count query returned no row');
  return {
    resources: Number(row.resources),
    safes: Number(row.safes),
    credentials: Number(row.credentials),
    connectors: Number(row.connectors),
    audit_log: Number(row.audit_log),
    sessions: Number(row.sessions),
  };
}

beforeAll(async () => {
  writeFileSync(configDocument.tokenFile, `${token}\n`, { mode: 0o600 });
  await admin.query(`CREATE DATABASE ${database}`);
  config = await resolveSandboxConfig(configDocument, 'test configuration');
  db = createPool(config);
  await applySchema(db);
  // Applying twice must be harmless: every start applies it.
  await applySchema(db);
  s3 = createRecordingsClient(config);
  await ensureBucket(s3, bucket, config.s3.region);
  app = await buildControlPlane(config, { db, recordings: s3 });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await db?.end();
  if (s3) {
    await reset(config, { ignoreMaintenance: true }).catch(() => undefined);
    await s3.removeBucket(bucket).catch(() => undefined);
  }
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
  rmSync(scratch, { recursive: true, force: true });
});

describe('sandbox VaultPAM on the real stack', () => {
  it('answers 401 without the bearer token, and serves /healthz to anyone', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }, { authorization: token }, { authorization: `Basic ${token}` }]) {
      const response = await app.inject({ method: 'GET', url: '/admin/stats', headers });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    }
    const write = await app.inject({ method: 'POST', url: '/sessions', payload: { resourceId: 'res_x' } });
    expect(write.statusCode).toBe(401);
    const unknownRoute = await app.inject({ method: 'GET', url: '/admin/secrets' });
    expect(unknownRoute.statusCode).toBe(401);

    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok', maintenance: false });
    const ok = await app.inject({ method: 'GET', url: '/admin/stats', headers: auth });
    expect(ok.statusCode).toBe(200);
  });

  it('counts in /admin/stats exactly what the seeder created', async () => {
    seeded = await seed(
      config,
      { organisations: 2, usersPerOrg: 3, resources: 7, safesPerResource: 2, credentialsPerSafe: 3, connectors: 4, auditEntries: 500, recordings: 6, recordingBytes: 3000 },
      { db, recordings: s3 },
    );
    expect(seeded).toMatchObject({ organisations: 2, users: 6, resources: 7, safes: 14, credentials: 42, connectors: 4, auditEntries: 506, sessions: 6, recordings: 6, recordingBytes: 18_000 });

    const response = await app.inject({ method: 'GET', url: '/admin/stats', headers: auth });
    expect(response.statusCode).toBe(200);
    expect(statsSchema.parse(response.json())).toEqual({ resources: 7, safes: 14, credentials: 42, connectors: 4, audit_log: 506, sessions: 6 });

    // Every session has its recording, under the documented key, with content of its own.
    const keys = await listKeys();
    expect(keys.size).toBe(6);
    const sessions = await db.query<{ id: string; recording_key: string }>('SELECT id, recording_key FROM sessions');
    for (const session of sessions.rows) {
      expect(session.recording_key).toMatch(new RegExp(`^sessions/\\d{4}/\\d{2}/\\d{2}/${session.id}\\.cast$`));
      expect(keys.get(session.recording_key)?.size).toBe(3000);
    }
    expect(new Set([...keys.values()].map((object) => object.etag)).size).toBe(6);
    const launches = await db.query('SELECT 1 FROM audit_log WHERE action = $1', ['session.launch']);
    expect(launches.rowCount).toBe(6);
  });

  it('launches a session: a sessions row, a session.launch audit entry and the recording object', async () => {
    const resourceId = seeded.sampleResourceId;
    expect(resourceId).toMatch(/^res_[0-9a-f]{16}$/);
    const before = await rowCounts();

    const response = await app.inject({ method: 'POST', url: '/sessions', headers: auth, payload: { resourceId } });
    expect(response.statusCode).toBe(201);
    const { sessionId, recordingKey } = response.json<{ sessionId: string; recordingKey: string }>();
    expect(recordingKey).toMatch(new RegExp(`^sessions/\\d{4}/\\d{2}/\\d{2}/${sessionId}\\.cast$`));

    const audit = await db.query<{ actor: string; resource_id: string; details: { sessionId: string; recordingKey: string } }>(
      "SELECT actor, resource_id, details FROM audit_log WHERE action = 'session.launch' AND details->>'sessionId' = $1",
      [sessionId],
    );
    expect(audit.rows).toEqual([{ actor: 'admin-api', resource_id: resourceId, details: expect.objectContaining({ sessionId, recordingKey }) }]);
    const session = await db.query('SELECT resource_id FROM sessions WHERE id = $1', [sessionId]);
    expect(session.rows).toEqual([{ resource_id: resourceId }]);
    const stat = await s3.statObject(bucket, recordingKey);
    expect(stat.size).toBe(4096);
    expect(await rowCounts()).toEqual({ ...before, sessions: before.sessions + 1, audit_log: before.audit_log + 1 });

    const missing = await app.inject({ method: 'POST', url: '/sessions', headers: auth, payload: { resourceId: 'res_0000000000000000' } });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'RESOURCE_NOT_FOUND' } });
    const invalid = await app.inject({ method: 'POST', url: '/sessions', headers: auth, payload: { resource: resourceId } });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json()).toMatchObject({ error: { code: 'INVALID_REQUEST' } });
    expect((await listKeys()).size).toBe(seeded.recordings + 1);
  });

  it('refuses every write with 503 in maintenance mode, writes nothing, and accepts writes again after', async () => {
    const resourceId = seeded.sampleResourceId as string;
    const enable = await app.inject({ method: 'POST', url: '/admin/maintenance', headers: auth, payload: { enabled: true, reason: 'backup test' } });
    expect(enable.statusCode).toBe(200);
    expect(enable.json()).toMatchObject({ enabled: true, reason: 'backup test' });
    const state = await app.inject({ method: 'GET', url: '/admin/maintenance', headers: auth });
    expect(state.json()).toMatchObject({ enabled: true, reason: 'backup test', since: expect.any(String) });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok', maintenance: true });

    const rowsBefore = await rowCounts();
    const keysBefore = await listKeys();
    const credential = await db.query<{ id: string }>('SELECT id FROM credentials LIMIT 1');
    const exported = (await app.inject({ method: 'GET', url: '/admin/connectors/export', headers: auth })).json<ConnectorInventory>();

    const writes = [
      { method: 'POST' as const, url: '/sessions', payload: { resourceId } },
      { method: 'POST' as const, url: '/resources', payload: { name: 'during-maintenance', kind: 'ssh', address: '10.9.9.9:22' } },
      { method: 'DELETE' as const, url: `/resources/${resourceId}` },
      { method: 'POST' as const, url: `/credentials/${credential.rows[0]?.id ?? 'none'}/rotate` },
      { method: 'POST' as const, url: '/admin/connectors/import', payload: { ...exported, connectors: [] } },
    ];
    for (const write of writes) {
      const response = await app.inject({ ...write, headers: auth });
      expect(response.statusCode, `${write.method} ${write.url}`).toBe(503);
      expect(response.json()).toMatchObject({ error: { code: 'MAINTENANCE', message: expect.stringContaining('backup test') } });
    }
    expect(await rowCounts()).toEqual(rowsBefore);
    expect(await listKeys()).toEqual(keysBefore);

    // Reads still work, and the flag is on disk (not in the database) for the next start to find.
    expect((await app.inject({ method: 'GET', url: '/admin/stats', headers: auth })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/resources', headers: auth })).statusCode).toBe(200);
    expect((await MaintenanceMode.load(config.stateDir)).state).toMatchObject({ enabled: true, reason: 'backup test' });

    const disable = await app.inject({ method: 'POST', url: '/admin/maintenance', headers: auth, payload: { enabled: false } });
    expect(disable.statusCode).toBe(200);
    expect(disable.json()).toMatchObject({ enabled: false });

    const launched = await app.inject({ method: 'POST', url: '/sessions', headers: auth, payload: { resourceId } });
    expect(launched.statusCode).toBe(201);
    const created = await app.inject({ method: 'POST', url: '/resources', headers: auth, payload: { name: 'after-maintenance', kind: 'ssh', address: '10.9.9.9:22' } });
    expect(created.statusCode).toBe(201);
    expect(await rowCounts()).toEqual({
      ...rowsBefore,
      resources: rowsBefore.resources + 1,
      sessions: rowsBefore.sessions + 1,
      audit_log: rowsBefore.audit_log + 2,
    });
    expect((await listKeys()).size).toBe(keysBefore.size + 1);
  });

  it('round-trips the connector inventory through export and import', async () => {
    const first = await app.inject({ method: 'GET', url: '/admin/connectors/export', headers: auth });
    expect(first.statusCode).toBe(200);
    const original = connectorInventorySchema.parse(first.json());
    expect(original.connectors).toHaveLength(4);

    // Replace it with something else, then bring the original back.
    const changed: ConnectorInventory = {
      exportedAt: new Date().toISOString(),
      connectors: [{ id: 'con_manual', name: 'ldap-manual', kind: 'ldap', config: { endpoint: 'ldaps://dc.example.test' }, enabled: false }],
    };
    const replaced = await app.inject({ method: 'POST', url: '/admin/connectors/import', headers: auth, payload: changed });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json()).toEqual({ imported: 1 });
    const afterChange = connectorInventorySchema.parse((await app.inject({ method: 'GET', url: '/admin/connectors/export', headers: auth })).json());
    expect(afterChange.connectors.map((connector) => connector.id)).toEqual(['con_manual']);

    const restored = await app.inject({ method: 'POST', url: '/admin/connectors/import', headers: auth, payload: original });
    expect(restored.statusCode).toBe(200);
    expect(restored.json()).toEqual({ imported: 4 });
    const again = connectorInventorySchema.parse((await app.inject({ method: 'GET', url: '/admin/connectors/export', headers: auth })).json());
    expect(again.connectors).toEqual(original.connectors);

    // Invalid documents are refused and change nothing.
    const invalid = await app.inject({ method: 'POST', url: '/admin/connectors/import', headers: auth, payload: { connectors: [{ id: 'x' }] } });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json()).toMatchObject({ error: { code: 'INVALID_REQUEST', message: expect.stringContaining('body.exportedAt') } });
    const first0 = original.connectors[0];
    const duplicate = await app.inject({
      method: 'POST',
      url: '/admin/connectors/import',
      headers: auth,
      payload: { ...original, connectors: [...original.connectors, { ...first0, name: 'another-name' }] },
    });
    expect(duplicate.statusCode).toBe(400);
    expect(duplicate.json()).toMatchObject({ error: { code: 'DUPLICATE_CONNECTOR' } });
    const notJson = await app.inject({ method: 'POST', url: '/admin/connectors/import', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"connectors": [' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toMatchObject({ error: { code: 'INVALID_REQUEST' } });
    const unchanged = connectorInventorySchema.parse((await app.inject({ method: 'GET', url: '/admin/connectors/export', headers: auth })).json());
    expect(unchanged.connectors).toEqual(original.connectors);
  });

  it('creates, rotates and deletes (cascading) with an audit entry for each', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/resources',
      headers: auth,
      payload: { name: 'db-orders', kind: 'database', address: '10.1.2.3:5432', safes: [{ name: 'dba', credentials: [{ username: 'postgres' }, { username: 'replicator', secret: 's3cret' }] }] },
    });
    expect(created.statusCode).toBe(201);
    const resource = created.json<{ id: string; safes: Array<{ id: string; credentials: Array<{ id: string; version: number }> }> }>();
    expect(resource.id).toMatch(/^res_/);
    expect(resource.safes).toHaveLength(1);
    expect(resource.safes[0]?.credentials).toHaveLength(2);
    expect(JSON.stringify(resource)).not.toContain('s3cret');

    const credentialId = resource.safes[0]?.credentials[0]?.id as string;
    const before = await db.query<{ secret: string }>('SELECT secret FROM credentials WHERE id = $1', [credentialId]);
    const rotated = await app.inject({ method: 'POST', url: `/credentials/${credentialId}/rotate`, headers: auth });
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json()).toMatchObject({ id: credentialId, version: 2 });
    const after = await db.query<{ secret: string }>('SELECT secret FROM credentials WHERE id = $1', [credentialId]);
    expect(after.rows[0]?.secret).not.toBe(before.rows[0]?.secret);
    expect((await app.inject({ method: 'POST', url: '/credentials/cred_missing/rotate', headers: auth })).statusCode).toBe(404);

    const removed = await app.inject({ method: 'DELETE', url: `/resources/${resource.id}`, headers: auth });
    expect(removed.statusCode).toBe(200);
    expect(removed.json()).toEqual({ deleted: { id: resource.id, safes: 1, credentials: 2 } });
    const left = await db.query('SELECT 1 FROM credentials c JOIN safes s ON s.id = c.safe_id WHERE s.resource_id = $1', [resource.id]);
    expect(left.rowCount).toBe(0);
    expect((await app.inject({ method: 'GET', url: `/resources/${resource.id}`, headers: auth })).statusCode).toBe(404);

    const audit = await db.query<{ action: string }>('SELECT action FROM audit_log WHERE resource_id = $1 ORDER BY id', [resource.id]);
    expect(audit.rows.map((row) => row.action)).toEqual(['resource.create', 'credential.rotate', 'resource.delete']);
  });

  it('runs as a process: keeps maintenance mode across a restart and stops within 2 s of SIGTERM', async () => {
    const configFile = join(scratch, 'server.json');
    writeFileSync(configFile, JSON.stringify(configDocument));

    const start = async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'sandbox/server.ts'), '--config', configFile], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      const address = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString('utf8');
          const match = /"address":"(http:\/\/[^"]+)"/.exec(output);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
        child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
        child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
      });
      const stop = async () => {
        const stopped = Date.now();
        const exit = once(child, 'exit');
        child.kill('SIGTERM');
        const [code] = (await exit) as [number | null];
        return { code, ms: Date.now() - stopped, output };
      };
      return { address, stop };
    };

    const first = await start();
    const health = await fetch(`${first.address}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok', maintenance: false });
    expect((await fetch(`${first.address}/admin/stats`)).status).toBe(401);
    const enable = await fetch(`${first.address}/admin/maintenance`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ enabled: true, reason: 'restore drill' }),
    });
    expect(enable.status).toBe(200);
    const firstStop = await first.stop();
    expect(firstStop.code).toBe(0);
    expect(firstStop.ms).toBeLessThan(2_000);
    expect(firstStop.output).not.toContain(token);
    expect(firstStop.output).not.toContain(env.pg.password);

    const second = await start();
    try {
      expect(await (await fetch(`${second.address}/admin/maintenance`, { headers: auth })).json()).toMatchObject({ enabled: true, reason: 'restore drill' });
      const refused = await fetch(`${second.address}/sessions`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ resourceId: seeded.sampleResourceId }),
      });
      expect(refused.status).toBe(503);
      const disable = await fetch(`${second.address}/admin/maintenance`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ enabled: false }),
      });
      expect(disable.status).toBe(200);
    } finally {
      const secondStop = await second.stop();
      expect(secondStop.code).toBe(0);
    }
    expect((await MaintenanceMode.load(config.stateDir)).enabled).toBe(false);
  });

  it('resets: every table empty and the bucket emptied', async () => {
    const done = await reset(config, {}, { db, recordings: s3 });
    expect(done.objects).toBeGreaterThan(0);
    expect(await rowCounts()).toEqual({ resources: 0, safes: 0, credentials: 0, connectors: 0, audit_log: 0, sessions: 0 });
    expect((await listKeys()).size).toBe(0);
  });
});
