// The loss report against the real PostgreSQL and S3 server: exact counts around a backup's point, a stable digest.
import { randomBytes } from 'node:crypto';
import * as Minio from 'minio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConfig } from '../../src/config/schema';
import { createDatabase, dropDatabase, withClient } from '../../src/postgres';
import {
  computeLossReport,
  lossReportDigest,
  lossReportIsEmpty,
  lossReportSchema,
  recordingsNewerThan,
  type LossReport,
} from '../../src/restore/loss-report';
import { schemaSql } from '../../sandbox/database';
import { stackEnv } from '../support/stack-env';

const env = stackEnv();
const run = randomBytes(4).toString('hex');
const database = `loss_report_${run}`;
const bucket = `loss-report-${run}`;
const config: PostgresConfig = { host: env.pg.host, port: env.pg.port, database, user: env.pg.user };
const s3 = new Minio.Client({ ...env.s3, pathStyle: true });

const since = new Date('2024-06-01T12:00:00.000Z');
// Literals in the seeding SQL: the test's own constants, nothing from outside.
const before = `'2024-06-01T11:00:00Z'::timestamptz`;
const at = `'2024-06-01T12:00:00Z'::timestamptz`;
const after = `'2024-06-01T13:00:00Z'::timestamptz`;

/** The lost side of a report, every count zero (the brought-back side kept). */
function emptyLoss(r: LossReport): Partial<LossReport> {
  const none = { created: 0, modified: 0 };
  return { auditEntries: 0, sessions: 0, organisations: none, users: none, resources: none, safes: none, credentials: { ...none, rotated: 0 }, connectors: none, recordings: r.recordings ? { ...r.recordings, objects: 0, bytes: 0 } : undefined };
}

/** Waits until just past the next whole second: S3 listings stamp objects in whole seconds. */
async function crossSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 50));
}

/** The same value with every object's keys in reverse order. */
function reversedKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.keys(value).reverse().map((key) => [key, reversedKeys((value as Record<string, unknown>)[key])]));
}

beforeAll(async () => {
  await createDatabase(config, env.pg.password, database);
  const schema = await schemaSql();
  await withClient(config, env.pg.password, async (client) => {
    await client.query(schema);
    // (created_at, updated_at) per row: before/before is untouched since the backup, before/after modified after
    // it, after/after created after it; `at` is exactly the backup's point, which is not "after".
    await client.query(
      `INSERT INTO organisations (id, name, created_at, updated_at) VALUES
         ('org_1', 'one', ${before}, ${before}), ('org_2', 'two', ${after}, ${after}), ('org_3', 'three', ${before}, ${after})`,
    );
    await client.query(
      `INSERT INTO users (id, organisation_id, email, display_name, created_at, updated_at) VALUES
         ('usr_1', 'org_1', 'a@example.test', 'A', ${before}, ${before}), ('usr_2', 'org_1', 'b@example.test', 'B', ${before}, ${after}),
         ('usr_3', 'org_2', 'c@example.test', 'C', ${after}, ${after}), ('usr_4', 'org_2', 'd@example.test', 'D', ${after}, ${after})`,
    );
    await client.query(
      `INSERT INTO resources (id, organisation_id, name, kind, address, created_at, updated_at) VALUES
         ('res_1', 'org_1', 'r1', 'ssh', '10.0.0.1:22', ${before}, ${before}), ('res_2', 'org_1', 'r2', 'rdp', '10.0.0.2:3389', ${before}, ${after}),
         ('res_3', 'org_2', 'r3', 'web', '10.0.0.3:443', ${after}, ${after}), ('res_4', 'org_1', 'r4', 'ssh', '10.0.0.4:22', ${at}, ${at})`,
    );
    await client.query(
      `INSERT INTO safes (id, resource_id, name, created_at, updated_at) VALUES
         ('safe_1', 'res_1', 's1', ${before}, ${before}), ('safe_2', 'res_1', 's2', ${after}, ${after}),
         ('safe_3', 'res_2', 's3', ${before}, ${after}), ('safe_4', 'res_2', 's4', ${before}, ${after})`,
    );
    await client.query(
      `INSERT INTO credentials (id, safe_id, username, secret, version, rotated_at, created_at, updated_at) VALUES
         ('cred_1', 'safe_1', 'root', 'x', 1, NULL, ${before}, ${before}),
         ('cred_2', 'safe_1', 'admin', 'y', 2, ${after}, ${before}, ${after}),
         ('cred_3', 'safe_2', 'deploy', 'z', 1, NULL, ${after}, ${after}),
         ('cred_4', 'safe_3', 'dba', 'w', 2, ${before}, ${before}, ${before}),
         ('cred_5', 'safe_4', 'svc', 'v', 2, ${after}, ${after}, ${after})`,
    );
    await client.query(
      `INSERT INTO connectors (id, name, kind, created_at, updated_at) VALUES
         ('con_1', 'ldap-1', 'ldap', ${before}, ${before}), ('con_2', 'aws-1', 'aws', ${after}, ${after}),
         ('con_3', 'gcp-1', 'gcp', ${after}, ${after}), ('con_4', 'okta-1', 'okta', ${before}, ${after})`,
    );
    await client.query(
      `INSERT INTO audit_log (at, actor, action, resource_id)
       SELECT ${before} - make_interval(mins => g), 'a@example.test', 'auth.login', 'res_1' FROM generate_series(1, 5) g
       UNION ALL SELECT ${at}, 'a@example.test', 'auth.logout', NULL
       UNION ALL SELECT ${after} + make_interval(mins => g), 'b@example.test', 'credential.view', 'res_2' FROM generate_series(1, 3) g`,
    );
    await client.query(
      `INSERT INTO sessions (resource_id, user_id, started_at, recording_key)
       SELECT 'res_1', 'usr_1', ${before}, 'sessions/before-' || g || '.cast' FROM generate_series(1, 2) g
       UNION ALL SELECT 'res_2', NULL, ${after} + make_interval(secs => g), 'sessions/after-' || g || '.cast' FROM generate_series(1, 4) g`,
    );
  });
});

afterAll(async () => {
  await dropDatabase(config, env.pg.password, database, { ifExists: true, force: true });
  if (await s3.bucketExists(bucket).catch(() => false)) {
    const names: string[] = [];
    for await (const item of s3.listObjectsV2(bucket, '', true) as AsyncIterable<Minio.BucketItem>) if (item.name) names.push(item.name);
    if (names.length > 0) await s3.removeObjects(bucket, names);
    await s3.removeBucket(bucket);
  }
});

describe('loss report on the real stack', () => {
  let report: LossReport;

  it('counts exactly what was created, modified, rotated and recorded after the backup point', async () => {
    report = await computeLossReport({ config, password: env.pg.password, since });
    expect(report).toEqual({
      since: '2024-06-01T12:00:00.000Z',
      database,
      auditEntries: 3,
      sessions: 4,
      organisations: { created: 1, modified: 1 },
      users: { created: 2, modified: 1 },
      resources: { created: 1, modified: 1 },
      safes: { created: 1, modified: 2 },
      credentials: { created: 2, modified: 1, rotated: 2 },
      connectors: { created: 2, modified: 1 },
    });
    expect(lossReportIsEmpty(report)).toBe(false);
    // The report is what travels through Temporal: JSON in, JSON out, still valid.
    expect(lossReportSchema.parse(JSON.parse(JSON.stringify(report)))).toEqual(report);
  });

  it('reports nothing for a point after the last write, and every row for a point before the first', async () => {
    const later = await computeLossReport({ config, password: env.pg.password, since: new Date('2024-06-02T00:00:00Z') });
    expect(lossReportIsEmpty(later)).toBe(true);
    const earlier = await computeLossReport({ config, password: env.pg.password, since: new Date('2024-01-01T00:00:00Z') });
    expect(earlier).toMatchObject({
      auditEntries: 9,
      sessions: 6,
      organisations: { created: 3, modified: 0 },
      resources: { created: 4, modified: 0 },
      credentials: { created: 5, modified: 0, rotated: 3 },
    });
  });

  it('says what restoring brings back: the backup\'s rows minus the live rows created at or before its point', async () => {
    // Live rows at or before the point: resources 3 (res_1, res_2, res_4 at the point), Safes 3, credentials 3,
    // audit entries 6, sessions 2. A backup holding more of them means rows were deleted since: they come back.
    const rowCounts = { resources: 10, safes: 3, credentials: 4, audit_log: 6, sessions: 1, connectors: 9 };
    const twoWay = await computeLossReport({ config, password: env.pg.password, since, backup: { rowCounts } });
    expect(twoWay.broughtBack).toEqual({ resources: 7, safes: 0, credentials: 1, audit_log: 0, sessions: 0 });
    // The lost side is unchanged by it, and the digest covers both sides.
    const { broughtBack: _back, ...lostSide } = twoWay;
    expect(lostSide).toEqual(report);
    expect(lossReportDigest(twoWay)).not.toBe(lossReportDigest(report));
    expect(lossReportDigest({ ...twoWay, broughtBack: { ...twoWay.broughtBack!, resources: 6 } })).not.toBe(lossReportDigest(twoWay));
    expect(lossReportIsEmpty({ ...twoWay, ...emptyLoss(twoWay) })).toBe(true);
  });

  it('counts rows from the database point to the microsecond when given, not from the bucket\'s whole second', async () => {
    // The bucket's clock says 11:59:59 (whole seconds, truncated); the database's snapshot was at 12:00:00.000000.
    // Rows are counted from the database's point: the same report as a point of exactly 12:00:00.
    const bucketSecond = new Date('2024-06-01T11:59:59.000Z');
    const precise = await computeLossReport({ config, password: env.pg.password, since: bucketSecond, databaseSince: '2024-06-01T12:00:00.000000Z' });
    expect({ ...precise, since: report.since }).toEqual(report);
    // One microsecond earlier, the rows written at exactly 12:00:00 (res_4, one audit entry) are newer than the point.
    const earlier = await computeLossReport({ config, password: env.pg.password, since: bucketSecond, databaseSince: '2024-06-01T11:59:59.999999Z' });
    expect(earlier.resources).toEqual({ created: 2, modified: 1 });
    expect(earlier.auditEntries).toBe(4);
    await expect(computeLossReport({ config, password: env.pg.password, since, databaseSince: 'yesterday' })).rejects.toThrow(/databaseSince must be an ISO 8601 time/);
  });

  it('refuses an invalid date with a message that says what to pass', async () => {
    await expect(computeLossReport({ config, password: env.pg.password, since: new Date('not a date') })).rejects.toThrow(/since must be a valid Date/);
  });

  it('digests the report stably across key order, and differently when any count changes', () => {
    const digest = lossReportDigest(report);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(lossReportDigest(reversedKeys(report) as LossReport)).toBe(digest);
    expect(lossReportDigest(JSON.parse(JSON.stringify(report)) as LossReport)).toBe(digest);
    expect(lossReportDigest({ ...report, auditEntries: report.auditEntries + 1 })).not.toBe(digest);
    expect(lossReportDigest({ ...report, credentials: { ...report.credentials, rotated: 0 } })).not.toBe(digest);
    expect(lossReportDigest({ ...report, since: '2024-06-01T12:00:01.000Z' })).not.toBe(digest);
    expect(() => lossReportDigest({ ...report, secret: 'x' } as LossReport)).toThrow(/not one/);
  });

  it('counts recording objects newer than the point, streaming the listing, and skips excluded prefixes', async () => {
    await s3.makeBucket(bucket, env.s3.region);
    const put = (key: string, bytes: number) => s3.putObject(bucket, key, Buffer.alloc(bytes, 1), bytes);
    await put('sessions/2024/06/01/old-1.cast', 100);
    await put('sessions/2024/06/01/old-2.cast', 200);
    await crossSecond();
    const point = new Date();
    await crossSecond();
    await put('sessions/2024/06/01/new-1.cast', 1000);
    await put('sessions/2024/06/01/new-2.cast', 2000);
    await put('sessions/2024/06/02/new-3.cast', 3000);
    await put('quarantine/restore-1/sessions/old-1.cast', 100);

    expect(await recordingsNewerThan({ client: s3, bucket, since: point, excludePrefixes: ['quarantine/'] })).toEqual({ objects: 3, bytes: 6000 });
    expect(await recordingsNewerThan({ client: s3, bucket, since: point })).toEqual({ objects: 4, bytes: 6100 });
    expect(await recordingsNewerThan({ client: s3, bucket, since: point, prefix: 'sessions/2024/06/02/' })).toEqual({ objects: 1, bytes: 3000 });
    expect(await recordingsNewerThan({ client: s3, bucket, since: new Date(Date.now() + 60_000) })).toEqual({ objects: 0, bytes: 0 });

    const withRecordings = await computeLossReport({
      config,
      password: env.pg.password,
      since: point,
      recordings: { client: s3, bucket, excludePrefixes: ['quarantine/'] },
    });
    expect(withRecordings.recordings).toEqual({ bucket, objects: 3, bytes: 6000 });
    // Every database row predates `point`, so only the recordings make this report non-empty.
    expect(withRecordings.auditEntries).toBe(0);
    expect(lossReportIsEmpty(withRecordings)).toBe(false);
    expect(lossReportDigest(withRecordings)).not.toBe(lossReportDigest({ ...withRecordings, recordings: undefined }));

    // The backup held 5 recordings (1000 bytes); the live bucket keeps 2 of before the point (300 bytes): 3 come back.
    const twoWay = await computeLossReport({
      config,
      password: env.pg.password,
      since: point,
      recordings: { client: s3, bucket, excludePrefixes: ['quarantine/'] },
      backup: { rowCounts: {}, recordings: { objects: 5, bytes: 1000 } },
    });
    expect(twoWay.broughtBack?.recordings).toEqual({ objects: 3, bytes: 700 });
    expect(twoWay.recordings).toEqual({ bucket, objects: 3, bytes: 6000 });
  });
});
