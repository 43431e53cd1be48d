// The scoped restore of one resource against the real PostgreSQL server: a backup's copy, a live database that moved on.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConfig } from '../../src/config/schema';
import { createDatabase, dropDatabase, tableChecksums, withClient } from '../../src/postgres';
import { ResourceRestoreError, resourceRecordingKeys, restoreResource, type ResourceRestoreResult } from '../../src/restore/resource-restore';
import { SANDBOX_TABLES, schemaSql } from '../../sandbox/database';
import { stackEnv } from '../support/stack-env';

const env = stackEnv();
const run = randomBytes(4).toString('hex');
const live = `resource_restore_${run}_live`;
const scratch = `resource_restore_${run}_scratch`;
const cluster: PostgresConfig = { host: env.pg.host, port: env.pg.port, database: live, user: env.pg.user };
const password = env.pg.password;
const ALL_TABLES = [...SANDBOX_TABLES];

type Row = Record<string, unknown>;

/** Rows of a table as PostgreSQL renders them in JSON (timestamps to the microsecond), ordered by id. */
async function rows(database: string, table: string, where = 'true', params: unknown[] = []): Promise<Row[]> {
  return withClient(
    cluster,
    password,
    async (client) => {
      const { rows: result } = await client.query<{ rows: string }>(
        `SELECT coalesce(json_agg(t ORDER BY t.id), '[]')::text AS rows FROM (SELECT * FROM ${table} WHERE ${where}) t`,
        params,
      );
      return JSON.parse(result[0]?.rows ?? '[]') as Row[];
    },
    { database },
  );
}

async function sql(database: string, text: string, params: unknown[] = []): Promise<Row[]> {
  return withClient(cluster, password, async (client) => (await client.query(text, params)).rows as Row[], { database });
}

async function everything(database: string): Promise<Record<string, Row[]>> {
  return Object.fromEntries(await Promise.all(ALL_TABLES.map(async (table) => [table, await rows(database, table)] as const)));
}

const withoutUpdatedAt = (list: Row[]) => list.map(({ updated_at: _updatedAt, ...rest }) => rest);
const ids = (list: Row[]) => new Set(list.map((row) => String(row.id)));

function restore(resourceId: string, extra: Partial<Parameters<typeof restoreResource>[0]> = {}): Promise<ResourceRestoreResult> {
  return restoreResource({ config: cluster, password, scratchDatabase: scratch, liveDatabase: live, resourceId, ...extra });
}

beforeAll(async () => {
  await createDatabase(cluster, password, live);
  const schema = await schemaSql();
  await withClient(
    cluster,
    password,
    async (client) => {
      await client.query(schema);
      // Microsecond timestamps, jsonb details: what a restore must carry over without rounding or re-encoding.
      await client.query(`
        INSERT INTO organisations (id, name, created_at, updated_at) VALUES
          ('org_1', 'Northwind', '2024-01-01T09:00:00.123456Z', '2024-01-01T09:00:00.123456Z'),
          ('org_2', 'Contoso', '2024-01-02T09:00:00Z', '2024-01-02T09:00:00Z');
        INSERT INTO users (id, organisation_id, email, display_name, role, created_at, updated_at) VALUES
          ('usr_1', 'org_1', 'ada@example.test', 'Ada', 'admin', '2024-01-03T09:00:00Z', '2024-01-03T09:00:00Z'),
          ('usr_2', 'org_1', 'bob@example.test', 'Bob', 'member', '2024-01-03T09:00:01Z', '2024-01-03T09:00:01Z');
        INSERT INTO resources (id, organisation_id, name, kind, address, created_at, updated_at) VALUES
          ('res_a', 'org_1', 'ssh-a', 'ssh', '10.0.0.1:22', '2024-02-01T10:00:00.000001Z', '2024-02-05T10:00:00.654321Z'),
          ('res_b', 'org_1', 'db-b', 'database', '10.0.0.2:5432', '2024-02-01T11:00:00Z', '2024-02-01T11:00:00Z'),
          ('res_c', 'org_1', 'web-c', 'web', '10.0.0.3:443', '2024-02-01T12:00:00Z', '2024-02-01T12:00:00Z'),
          ('res_d', 'org_2', 'rdp-d', 'rdp', '10.0.0.4:3389', '2024-02-01T13:00:00Z', '2024-02-01T13:00:00Z');
        INSERT INTO safes (id, resource_id, name, created_at, updated_at) VALUES
          ('safe_a1', 'res_a', 'root-1', '2024-02-02T10:00:00Z', '2024-02-02T10:00:00Z'),
          ('safe_a2', 'res_a', 'operators-2', '2024-02-02T10:00:01Z', '2024-02-03T10:00:01.5Z'),
          ('safe_b1', 'res_b', 'dba-1', '2024-02-02T11:00:00Z', '2024-02-02T11:00:00Z'),
          ('safe_c1', 'res_c', 'deploy-1', '2024-02-02T12:00:00Z', '2024-02-02T12:00:00Z'),
          ('safe_d1', 'res_d', 'service-1', '2024-02-02T13:00:00Z', '2024-02-02T13:00:00Z');
        INSERT INTO credentials (id, safe_id, username, secret, version, rotated_at, created_at, updated_at) VALUES
          ('cred_a1', 'safe_a1', 'root', 'secret-a1', 3, '2024-03-01T00:00:00.25Z', '2024-02-02T10:00:00Z', '2024-03-01T00:00:00.25Z'),
          ('cred_a2', 'safe_a1', 'admin', 'secret-a2', 1, NULL, '2024-02-02T10:00:00Z', '2024-02-02T10:00:00Z'),
          ('cred_a3', 'safe_a2', 'operator', 'secret-a3', 1, NULL, '2024-02-02T10:00:01Z', '2024-02-02T10:00:01Z'),
          ('cred_b1', 'safe_b1', 'postgres', 'secret-b1', 1, NULL, '2024-02-02T11:00:00Z', '2024-02-02T11:00:00Z'),
          ('cred_b2', 'safe_b1', 'replica', 'secret-b2', 1, NULL, '2024-02-02T11:00:00Z', '2024-02-02T11:00:00Z'),
          ('cred_c1', 'safe_c1', 'deploy', 'secret-c1', 1, NULL, '2024-02-02T12:00:00Z', '2024-02-02T12:00:00Z'),
          ('cred_d1', 'safe_d1', 'svc', 'secret-d1', 1, NULL, '2024-02-02T13:00:00Z', '2024-02-02T13:00:00Z');
        INSERT INTO sessions (id, resource_id, user_id, started_at, recording_key, created_at, updated_at) VALUES
          ('00000000-0000-4000-8000-00000000a001', 'res_a', 'usr_1', '2024-04-01T08:00:00.111111Z', 'sessions/2024/04/01/00000000-0000-4000-8000-00000000a001.cast', '2024-04-01T08:00:00.111111Z', '2024-04-01T08:00:00.111111Z'),
          ('00000000-0000-4000-8000-00000000a002', 'res_a', 'usr_2', '2024-04-02T08:00:00Z', 'sessions/2024/04/02/00000000-0000-4000-8000-00000000a002.cast', '2024-04-02T08:00:00Z', '2024-04-02T08:00:00Z'),
          ('00000000-0000-4000-8000-00000000a003', 'res_a', NULL, '2024-04-03T08:00:00Z', 'sessions/2024/04/03/00000000-0000-4000-8000-00000000a003.cast', '2024-04-03T08:00:00Z', '2024-04-03T08:00:00Z'),
          ('00000000-0000-4000-8000-00000000b001', 'res_b', 'usr_1', '2024-04-04T08:00:00Z', 'sessions/2024/04/04/00000000-0000-4000-8000-00000000b001.cast', '2024-04-04T08:00:00Z', '2024-04-04T08:00:00Z');
        INSERT INTO audit_log (at, actor, action, resource_id, details) VALUES
          ('2024-04-01T08:00:00.111111Z', 'ada@example.test', 'session.launch', 'res_a', '{"sessionId": "00000000-0000-4000-8000-00000000a001", "n": 1.5}'),
          ('2024-04-01T09:00:00Z', 'ada@example.test', 'credential.checkout', 'res_a', '{"credentialId": "cred_a1", "nested": {"b": [1, 2], "a": null}}'),
          ('2024-04-02T08:00:00Z', 'bob@example.test', 'session.launch', 'res_a', '{"sessionId": "00000000-0000-4000-8000-00000000a002"}'),
          ('2024-04-02T09:00:00Z', 'bob@example.test', 'auth.logout', NULL, '{}'),
          ('2024-04-03T08:00:00Z', 'system', 'resource.update', 'res_a', '{"field": "address"}'),
          ('2024-04-04T08:00:00Z', 'ada@example.test', 'session.launch', 'res_b', '{}'),
          ('2024-04-04T09:00:00Z', 'ada@example.test', 'credential.view', 'res_b', '{}');
      `);
    },
    { database: live },
  );

  // The backup: an exact copy of live as it is now, as pg_restore would have left it in a scratch database.
  await withClient(cluster, password, (client) => client.query(`CREATE DATABASE ${scratch} TEMPLATE ${live}`), { database: 'postgres' });

  // Life goes on in live after the backup.
  await withClient(
    cluster,
    password,
    async (client) => {
      await client.query(`
        DELETE FROM resources WHERE id = 'res_a';
        DELETE FROM sessions WHERE id = '00000000-0000-4000-8000-00000000a002';
        DELETE FROM users WHERE id = 'usr_2';
        DELETE FROM audit_log WHERE resource_id = 'res_a' AND action IN ('credential.checkout', 'resource.update');
        DELETE FROM organisations WHERE id = 'org_2';
        UPDATE resources SET address = '10.9.9.9:5432' WHERE id = 'res_b';
        UPDATE credentials SET secret = 'rotated-b1', version = version + 1, rotated_at = now() WHERE id = 'cred_b1';
        INSERT INTO credentials (id, safe_id, username, secret) VALUES ('cred_b3', 'safe_b1', 'readonly', 'secret-b3');
        INSERT INTO sessions (id, resource_id, user_id, recording_key)
          VALUES ('00000000-0000-4000-8000-00000000b002', 'res_b', 'usr_1', 'sessions/2024/06/01/00000000-0000-4000-8000-00000000b002.cast');
        INSERT INTO audit_log (actor, action, resource_id, details) VALUES
          ('ada@example.test', 'resource.delete', 'res_a', '{}'),
          ('ada@example.test', 'credential.rotate', 'res_b', '{"credentialId": "cred_b1"}'),
          ('ada@example.test', 'auth.login', NULL, '{}');
      `);
    },
    { database: live },
  );
});

afterAll(async () => {
  await dropDatabase(cluster, password, live, { ifExists: true, force: true });
  await dropDatabase(cluster, password, scratch, { ifExists: true, force: true });
});

describe('restoring one resource from a backup on the real server', () => {
  const resourceA = "resource_id = 'res_a'";
  const credentialsOfA = "safe_id IN ('safe_a1', 'safe_a2')";

  it('lists the recording keys of the resource\'s sessions in the backup, oldest first', async () => {
    expect(await resourceRecordingKeys({ config: cluster, password, database: scratch, resourceId: 'res_a' })).toEqual([
      'sessions/2024/04/01/00000000-0000-4000-8000-00000000a001.cast',
      'sessions/2024/04/02/00000000-0000-4000-8000-00000000a002.cast',
      'sessions/2024/04/03/00000000-0000-4000-8000-00000000a003.cast',
    ]);
    expect(await resourceRecordingKeys({ config: cluster, password, database: live, resourceId: 'res_a' })).toHaveLength(2);
    expect(await resourceRecordingKeys({ config: cluster, password, database: scratch, resourceId: 'res_nope' })).toEqual([]);
  });

  it('refuses a resource the backup never had, with a clear error, and changes nothing', async () => {
    const before = await tableChecksums(cluster, password, live, ALL_TABLES);
    const error = await restore('res_0000000000000000').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResourceRestoreError);
    expect((error as ResourceRestoreError).code).toBe('VPB_ERR_RESTORE_RESOURCE_NOT_IN_BACKUP');
    expect((error as Error).message).toMatch(/resource "res_0000000000000000" is not in the backup .*nothing was changed/);
    expect(await tableChecksums(cluster, password, live, ALL_TABLES)).toEqual(before);
  });

  it('refuses bad input before touching either database', async () => {
    await expect(restore('res_a', { scratchDatabase: live })).rejects.toMatchObject({ code: 'VPB_ERR_RESTORE_INPUT_INVALID' });
    await expect(restore('  ')).rejects.toMatchObject({ code: 'VPB_ERR_RESTORE_INPUT_INVALID' });
    await expect(restore('res_a', { scratchDatabase: 'no such; db' })).rejects.toThrow(/invalid database name/);
  });

  it('refuses a resource whose organisation is gone from live, and changes nothing', async () => {
    const before = await tableChecksums(cluster, password, live, ALL_TABLES);
    await expect(restore('res_d')).rejects.toMatchObject({
      code: 'VPB_ERR_RESTORE_ORGANISATION_MISSING',
      message: expect.stringMatching(/organisation "org_2", which no longer exists .*nothing was changed/) as unknown,
    });
    expect(await tableChecksums(cluster, password, live, ALL_TABLES)).toEqual(before);
  });

  it('brings a deleted resource back with its safes, credentials, sessions and audit entries, and leaves every other row alone', async () => {
    const liveBefore = await everything(live);
    const [{ now: restoreStarted }] = (await sql(live, 'SELECT clock_timestamp()::text AS now')) as [{ now: string }];

    const result = await restore('res_a', { backupId: 'bkp-20240501-0001' });
    expect(result.tables).toEqual({
      resources: { inserted: 1, updated: 0, unchanged: 0 },
      safes: { inserted: 2, updated: 0, unchanged: 0 },
      credentials: { inserted: 3, updated: 0, unchanged: 0 },
      sessions: { inserted: 1, updated: 0, unchanged: 2 },
      audit_log: { inserted: 2, updated: 0, unchanged: 2 },
    });
    expect(result.sessionsWithoutUser).toBe(1);
    expect(result.auditEntryId).toMatch(/^\d+$/);

    // Configuration rows: the backup's values exactly, except updated_at, which records the restore.
    for (const [table, where] of [
      ['resources', "id = 'res_a'"],
      ['safes', resourceA],
      ['credentials', credentialsOfA],
    ] as const) {
      const restored = await rows(live, table, where);
      const backup = await rows(scratch, table, where);
      expect(restored.length).toBeGreaterThan(0);
      expect(withoutUpdatedAt(restored)).toEqual(withoutUpdatedAt(backup));
      const [{ fresh }] = (await sql(live, `SELECT bool_and(updated_at >= $1::timestamptz) AS fresh FROM ${table} WHERE ${where}`, [restoreStarted])) as [{ fresh: boolean }];
      expect(fresh).toBe(true);
    }

    // History rows: exactly the backup's, original ids included; the re-inserted session of a deleted user has none.
    const backupSessions = await rows(scratch, 'sessions', resourceA);
    const expectedSessions = backupSessions.map((s) => (s.id === '00000000-0000-4000-8000-00000000a002' ? { ...s, user_id: null } : s));
    expect(await rows(live, 'sessions', resourceA)).toEqual(expectedSessions);
    const backupAudit = await rows(scratch, 'audit_log', resourceA);
    const liveAudit = await rows(live, 'audit_log', resourceA);
    expect(liveAudit.filter((entry) => ids(backupAudit).has(String(entry.id)))).toEqual(backupAudit);

    // The audit entry of the restore itself.
    const [entry] = await rows(live, 'audit_log', 'id = $1', [result.auditEntryId]);
    expect(entry).toMatchObject({
      actor: 'vaultpam-backup',
      action: 'restore.resource',
      resource_id: 'res_a',
      details: { backupId: 'bkp-20240501-0001', scratchDatabase: scratch, tables: result.tables, sessionsWithoutUser: 1 },
    });

    // Every row that existed in live before is still there, unchanged; the only new ones are the restored rows.
    const liveAfter = await everything(live);
    const backupIds: Record<string, Set<string>> = {
      resources: new Set(['res_a']),
      safes: ids(await rows(scratch, 'safes', resourceA)),
      credentials: ids(await rows(scratch, 'credentials', credentialsOfA)),
      sessions: ids(backupSessions),
      audit_log: new Set([...ids(backupAudit), result.auditEntryId]),
    };
    for (const table of ALL_TABLES) {
      const before = liveBefore[table] ?? [];
      const after = liveAfter[table] ?? [];
      const preexisting = ids(before);
      expect(after.filter((row) => preexisting.has(String(row.id))), table).toEqual(before);
      const added = after.filter((row) => !preexisting.has(String(row.id))).map((row) => String(row.id));
      for (const id of added) expect(backupIds[table]?.has(id), `${table} ${id}`).toBe(true);
    }
    // What live gained after the backup is all still there: B's edits, its new credential and session, new audit rows.
    expect((await rows(live, 'resources', "id = 'res_b'"))[0]).toMatchObject({ address: '10.9.9.9:5432' });
    expect(await rows(live, 'credentials', "id = 'cred_b3'")).toHaveLength(1);
    expect(await rows(live, 'audit_log', "action IN ('resource.delete', 'credential.rotate', 'auth.login')")).toHaveLength(3);

    // The sequence still hands out fresh ids.
    const [{ id: next }] = (await sql(live, "INSERT INTO audit_log (actor, action) VALUES ('test', 'after.restore') RETURNING id::text AS id")) as [{ id: string }];
    expect(BigInt(next)).toBeGreaterThan(BigInt(result.auditEntryId));
  });

  it('is idempotent: a second restore of the same resource writes nothing but its audit entry', async () => {
    const before = await tableChecksums(cluster, password, live, ALL_TABLES.filter((t) => t !== 'audit_log'));
    const result = await restore('res_a');
    expect(result.tables).toEqual({
      resources: { inserted: 0, updated: 0, unchanged: 1 },
      safes: { inserted: 0, updated: 0, unchanged: 2 },
      credentials: { inserted: 0, updated: 0, unchanged: 3 },
      sessions: { inserted: 0, updated: 0, unchanged: 3 },
      audit_log: { inserted: 0, updated: 0, unchanged: 4 },
    });
    expect(result.sessionsWithoutUser).toBe(0);
    expect(await tableChecksums(cluster, password, live, ALL_TABLES.filter((t) => t !== 'audit_log'))).toEqual(before);
    const [entry] = await rows(live, 'audit_log', 'id = $1', [result.auditEntryId]);
    expect(entry?.details).not.toHaveProperty('backupId');
  });

  it('puts an existing resource back to the backup\'s values, credentials included, and keeps what was created since', async () => {
    const others = await tableChecksums(cluster, password, live, ['organisations', 'users', 'connectors']);
    const bystander = await rows(live, 'resources', "id = 'res_c'");
    const result = await restore('res_b', { batchSize: 1 });
    expect(result.tables).toEqual({
      resources: { inserted: 0, updated: 1, unchanged: 0 },
      safes: { inserted: 0, updated: 0, unchanged: 1 },
      credentials: { inserted: 0, updated: 1, unchanged: 1 },
      sessions: { inserted: 0, updated: 0, unchanged: 1 },
      audit_log: { inserted: 0, updated: 0, unchanged: 2 },
    });
    expect(withoutUpdatedAt(await rows(live, 'resources', "id = 'res_b'"))).toEqual(withoutUpdatedAt(await rows(scratch, 'resources', "id = 'res_b'")));
    const [b1] = await rows(live, 'credentials', "id = 'cred_b1'");
    expect(b1).toMatchObject({ secret: 'secret-b1', version: 1, rotated_at: null });
    expect((await rows(live, 'credentials', "safe_id = 'safe_b1'")).map((c) => c.id)).toEqual(['cred_b1', 'cred_b2', 'cred_b3']);
    expect(await rows(live, 'sessions', "resource_id = 'res_b'")).toHaveLength(2);
    expect(await rows(live, 'resources', "id = 'res_c'")).toEqual(bystander);
    expect(await tableChecksums(cluster, password, live, ['organisations', 'users', 'connectors'])).toEqual(others);
  });
});
