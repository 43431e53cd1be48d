// Fills a sandbox deployment with realistic data at any size (database rows and recording objects), or resets it.
import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type * as Minio from 'minio';
import type pg from 'pg';
import { z } from 'zod';
import { SANDBOX_TABLES, applySchema, createPool, inTransaction } from './database';
import { MaintenanceMode } from './maintenance-mode';
import { createRecordingsClient, emptyBucket, ensureBucket, recordingKey, renderRecording } from './recordings';
import { loadSandboxConfig, type SandboxConfig } from './sandbox-config';
import { isEntryPoint } from '../src/runtime/entry-point';

const count = z.number().int().min(0);

/** The size knobs; every count is what one run adds (a run never replaces what an earlier one created). */
export const seedOptionsSchema = z
  .object({
    /** @default 2 */
    organisations: count.default(2),
    /** Users created in each organisation this run creates. @default 5 */
    usersPerOrg: count.default(5),
    /** Spread over all organisations of the deployment. @default 10 */
    resources: count.default(10),
    /** Safes of each resource this run creates. @default 2 */
    safesPerResource: count.default(2),
    /** @default 3 */
    credentialsPerSafe: count.default(3),
    /** @default 5 */
    connectors: count.default(5),
    /** Audit entries besides the one each recording gets. @default 200 */
    auditEntries: count.default(200),
    /** Each one a session row, an audit entry and an object in the bucket. @default 10 */
    recordings: count.default(10),
    /** @default 16384 */
    recordingBytes: z.number().int().min(1).max(1024 * 1024 * 1024).default(16 * 1024),
    /** Uploads in flight at once. @default 16 */
    concurrency: z.number().int().min(1).max(256).default(16),
    /**
     * Spread audit entries and sessions over this many days before now (oldest first). 0 stamps everything now,
     * which keeps a seed run after a backup countable as "newer than the backup".
     * @default 0
     */
    backdateDays: z.number().min(0).max(3650).default(0),
    /** Seeding changes the database under a backup that may be running; refused in maintenance mode unless set. @default false */
    ignoreMaintenance: z.boolean().default(false),
  })
  .strict();
export type SeedOptions = z.input<typeof seedOptionsSchema>;

export interface SeedResult {
  organisations: number;
  users: number;
  resources: number;
  safes: number;
  credentials: number;
  connectors: number;
  /** Including one `session.launch` entry per recording. */
  auditEntries: number;
  sessions: number;
  recordings: number;
  recordingBytes: number;
  /** The oldest resource of the deployment: a stable target for a smoke-test session launch. */
  sampleResourceId: string | null;
  durationMs: number;
}

/** Clients to reuse instead of opening (and closing) new ones. */
export interface SeedDeps {
  db?: pg.Pool;
  recordings?: Minio.Client;
}

export class SeedRefusedError extends Error {
  readonly code = 'SEED_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'SeedRefusedError';
  }
}

const SESSION_BATCH = 500;

async function withClients<T>(config: SandboxConfig, deps: SeedDeps, work: (db: pg.Pool, s3: Minio.Client) => Promise<T>): Promise<T> {
  const db = deps.db ?? createPool(config, 4);
  const s3 = deps.recordings ?? createRecordingsClient(config);
  try {
    if (!deps.db) await applySchema(db);
    await ensureBucket(s3, config.s3.bucket, config.s3.region);
    return await work(db, s3);
  } finally {
    if (!deps.db) await db.end();
  }
}

async function refuseInMaintenance(config: SandboxConfig, ignore: boolean, what: string): Promise<void> {
  if (ignore) return;
  const maintenance = await MaintenanceMode.load(config.stateDir);
  if (maintenance.enabled) {
    throw new SeedRefusedError(
      `${config.name} is in maintenance mode (${maintenance.state.reason ?? 'no reason given'}): ${what} would change it under a backup or restore; wait, or pass ignoreMaintenance (--ignore-maintenance)`,
    );
  }
}

/** Adds data to the deployment `config` describes; returns what it created. */
export async function seed(config: SandboxConfig, opts: SeedOptions = {}, deps: SeedDeps = {}): Promise<SeedResult> {
  const parsed = seedOptionsSchema.safeParse(opts);
  if (!parsed.success) {
    throw new SeedRefusedError(`seed options are invalid: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  const o = parsed.data;
  await refuseInMaintenance(config, o.ignoreMaintenance, 'seeding');
  const started = performance.now();
  // Keeps names and e-mail addresses of successive runs apart (users.email is unique).
  const run = randomBytes(3).toString('hex');
  const backdateSeconds = o.backdateDays * 86_400;

  return withClients(config, deps, async (db, s3) => {
    const created = await inTransaction(db, async (client) => {
      const organisations = await client.query<{ id: string }>(
        `INSERT INTO organisations (name)
         SELECT (ARRAY['Northwind', 'Contoso', 'Fabrikam', 'Globex', 'Initech', 'Umbrella', 'Tyrell', 'Wayne'])[1 + (g - 1) % 8] || ' ' || $2 || '-' || g
         FROM generate_series(1, $1::int) g RETURNING id`,
        [o.organisations, run],
      );
      const users = await client.query(
        `INSERT INTO users (organisation_id, email, display_name, role)
         SELECT o.id, 'user' || u || '.' || o.n || '.' || $3 || '@example.test', 'User ' || u || ' of organisation ' || o.n,
                CASE WHEN u = 1 THEN 'org-admin' WHEN u % 7 = 0 THEN 'auditor' WHEN u % 5 = 0 THEN 'admin' ELSE 'member' END
         FROM unnest($1::text[]) WITH ORDINALITY AS o(id, n) CROSS JOIN generate_series(1, $2::int) u`,
        [organisations.rows.map((row) => row.id), o.usersPerOrg, run],
      );

      let tree = { resources: 0, safes: 0, credentials: 0 };
      if (o.resources > 0) {
        const organisationCount = await client.query<{ n: string }>('SELECT count(*) AS n FROM organisations');
        if (Number(organisationCount.rows[0]?.n ?? 0) === 0) {
          throw new SeedRefusedError('resources need an organisation: seed at least one (organisations >= 1)');
        }
        // One statement: each CTE inserts the children of the rows the previous one returned.
        const result = await client.query<{ resources: string; safes: string; credentials: string }>(
          `WITH orgs AS (SELECT array_agg(id ORDER BY created_at, id) AS ids FROM organisations),
           new_resources AS (
             INSERT INTO resources (organisation_id, name, kind, address)
             SELECT orgs.ids[1 + g % cardinality(orgs.ids)],
                    (ARRAY['ssh', 'rdp', 'db', 'k8s', 'web'])[1 + g % 5] || '-' || $4 || '-' || lpad(g::text, 6, '0'),
                    (ARRAY['ssh', 'rdp', 'database', 'kubernetes', 'web'])[1 + g % 5],
                    '10.' || (g / 65536) % 256 || '.' || (g / 256) % 256 || '.' || g % 256 || ':' || (ARRAY[22, 3389, 5432, 6443, 443])[1 + g % 5]
             FROM generate_series(1, $1::int) g CROSS JOIN orgs
             RETURNING id),
           new_safes AS (
             INSERT INTO safes (resource_id, name)
             SELECT r.id, (ARRAY['root', 'operators', 'break-glass', 'service', 'deploy'])[1 + (s - 1) % 5] || '-' || s
             FROM new_resources r CROSS JOIN generate_series(1, $2::int) s
             RETURNING id),
           new_credentials AS (
             INSERT INTO credentials (safe_id, username, secret)
             SELECT s.id, (ARRAY['root', 'admin', 'svc-backup', 'deploy', 'dba', 'operator'])[1 + (c - 1) % 6] || c,
                    md5(random()::text || clock_timestamp()::text) || md5(random()::text)
             FROM new_safes s CROSS JOIN generate_series(1, $3::int) c
             RETURNING 1)
           SELECT (SELECT count(*) FROM new_resources) AS resources, (SELECT count(*) FROM new_safes) AS safes,
                  (SELECT count(*) FROM new_credentials) AS credentials`,
          [o.resources, o.safesPerResource, o.credentialsPerSafe, run],
        );
        const row = result.rows[0];
        tree = { resources: Number(row?.resources ?? 0), safes: Number(row?.safes ?? 0), credentials: Number(row?.credentials ?? 0) };
      }

      const connectors = await client.query(
        `INSERT INTO connectors (name, kind, config, enabled)
         SELECT k.kind || '-' || $2 || '-' || g, k.kind,
                jsonb_build_object(
                  'endpoint', 'https://' || k.kind || g || '.corp.example.test',
                  'region', (ARRAY['eu-central', 'eu-west', 'us-east'])[1 + g % 3],
                  'syncIntervalMinutes', 15 * (1 + g % 4),
                  'credentialRef', 'safe://connectors/' || k.kind || '-' || g,
                  'tags', jsonb_build_array('seeded', 'run-' || $2)),
                g % 5 <> 0
         FROM generate_series(1, $1::int) g
         CROSS JOIN LATERAL (SELECT (ARRAY['ldap', 'saml', 'aws', 'azure', 'gcp', 'kubernetes', 'vcenter', 'okta'])[1 + (g - 1) % 8] AS kind) k`,
        [o.connectors, run],
      );

      // Cross joins (not scalar subqueries) so that random() is drawn per row.
      const audit = await client.query(
        `WITH actors AS (SELECT coalesce(array_agg(email), ARRAY['system']) AS a FROM users),
              targets AS (SELECT array_agg(id) AS a FROM resources)
         INSERT INTO audit_log (at, actor, action, resource_id, details)
         SELECT now() - make_interval(secs => $2::float8 * ($1::int - g) / greatest($1::int, 1)),
                actors.a[1 + floor(random() * cardinality(actors.a))::int],
                (ARRAY['auth.login', 'auth.logout', 'credential.checkout', 'credential.checkin', 'credential.view', 'safe.open',
                       'resource.update', 'policy.evaluate'])[1 + floor(random() * 8)::int],
                CASE WHEN targets.a IS NULL THEN NULL ELSE targets.a[1 + floor(random() * cardinality(targets.a))::int] END,
                jsonb_build_object('ip', '10.20.' || (g / 256) % 256 || '.' || g % 256, 'seq', g, 'client', 'vaultpam-console/4.2')
         FROM generate_series(1, $1::int) g CROSS JOIN actors CROSS JOIN targets`,
        [o.auditEntries, backdateSeconds],
      );

      return {
        organisations: organisations.rowCount ?? 0,
        users: users.rowCount ?? 0,
        ...tree,
        connectors: connectors.rowCount ?? 0,
        auditEntries: audit.rowCount ?? 0,
      };
    });

    const sessions = await seedRecordings(config, db, s3, o.recordings, o.recordingBytes, o.concurrency, backdateSeconds);
    const sample = await db.query<{ id: string }>('SELECT id FROM resources ORDER BY created_at, id LIMIT 1');
    return {
      ...created,
      auditEntries: created.auditEntries + sessions.count,
      sessions: sessions.count,
      recordings: sessions.count,
      recordingBytes: sessions.bytes,
      sampleResourceId: sample.rows[0]?.id ?? null,
      durationMs: Math.round(performance.now() - started),
    };
  });
}

/**
 * Uploads `total` recordings and records each as a session row and a `session.launch` audit entry. Rows are
 * written batch by batch after their objects, so an interrupted run leaves no session without its recording.
 */
async function seedRecordings(
  config: SandboxConfig,
  db: pg.Pool,
  s3: Minio.Client,
  total: number,
  bytes: number,
  concurrency: number,
  backdateSeconds: number,
): Promise<{ count: number; bytes: number }> {
  if (total === 0) return { count: 0, bytes: 0 };
  const resources = (await db.query<{ id: string }>('SELECT id FROM resources')).rows.map((row) => row.id);
  if (resources.length === 0) throw new SeedRefusedError('recordings need a resource to have been launched against: seed resources >= 1');
  const users = (await db.query<{ id: string; email: string }>('SELECT id, email FROM users')).rows;
  const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(Math.random() * items.length)];
  const now = Date.now();
  let uploadedBytes = 0;

  for (let first = 0; first < total; first += SESSION_BATCH) {
    const batch = Array.from({ length: Math.min(SESSION_BATCH, total - first) }, (_, offset) => {
      const index = first + offset;
      const id = randomUUID();
      const startedAt = new Date(now - (backdateSeconds * 1000 * (total - index)) / total);
      const user = pick(users);
      return { id, resourceId: pick(resources) as string, userId: user?.id ?? null, actor: user?.email ?? 'system', startedAt, key: recordingKey(id, startedAt) };
    });
    let next = 0;
    const lane = async () => {
      while (next < batch.length) {
        const session = batch[next++];
        if (!session) return;
        const content = renderRecording(session.id, session.startedAt, bytes);
        await s3.putObject(config.s3.bucket, session.key, content, content.length, { 'Content-Type': 'application/x-asciicast' });
        uploadedBytes += content.length;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, batch.length) }, lane));

    const columns = [
      batch.map((s) => s.id),
      batch.map((s) => s.resourceId),
      batch.map((s) => s.userId),
      batch.map((s) => s.startedAt.toISOString()),
      batch.map((s) => s.key),
      batch.map((s) => s.actor),
    ];
    await inTransaction(db, async (client) => {
      await client.query(
        `INSERT INTO sessions (id, resource_id, user_id, started_at, recording_key, created_at, updated_at)
         SELECT id, resource_id, user_id, started_at, key, started_at, started_at
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS t(id, resource_id, user_id, started_at, key)`,
        columns.slice(0, 5),
      );
      await client.query(
        `INSERT INTO audit_log (at, actor, action, resource_id, details)
         SELECT started_at, actor, 'session.launch', resource_id, jsonb_build_object('sessionId', id, 'recordingKey', key, 'userId', user_id)
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[]) AS t(id, resource_id, user_id, started_at, key, actor)
         ORDER BY started_at`,
        columns,
      );
    });
  }
  return { count: total, bytes: uploadedBytes };
}

export interface ResetResult {
  tables: number;
  objects: number;
  durationMs: number;
}

/** Empties every table and the recordings bucket (schema and bucket stay). */
export async function reset(config: SandboxConfig, opts: { ignoreMaintenance?: boolean } = {}, deps: SeedDeps = {}): Promise<ResetResult> {
  await refuseInMaintenance(config, opts.ignoreMaintenance ?? false, 'a reset');
  const started = performance.now();
  return withClients(config, deps, async (db, s3) => {
    await db.query(`TRUNCATE ${SANDBOX_TABLES.join(', ')} RESTART IDENTITY CASCADE`);
    const objects = await emptyBucket(s3, config.s3.bucket);
    return { tables: SANDBOX_TABLES.length, objects, durationMs: Math.round(performance.now() - started) };
  });
}

// ---------------------------------------------------------------------------------------------- CLI

const USAGE = `usage: node --import tsx sandbox/seed.ts --config .stack/sandbox/<name>.json [--reset | --reset-only]
  [--organisations N] [--users-per-org N] [--resources N] [--safes-per-resource N] [--credentials-per-safe N]
  [--connectors N] [--audit N] [--recordings N] [--recording-bytes N] [--concurrency N] [--backdate-days N]
  [--ignore-maintenance]`;

/** CLI flag -> seed option; every value is a number. */
const NUMERIC_FLAGS = {
  organisations: 'organisations',
  'users-per-org': 'usersPerOrg',
  resources: 'resources',
  'safes-per-resource': 'safesPerResource',
  'credentials-per-safe': 'credentialsPerSafe',
  connectors: 'connectors',
  audit: 'auditEntries',
  recordings: 'recordings',
  'recording-bytes': 'recordingBytes',
  concurrency: 'concurrency',
  'backdate-days': 'backdateDays',
} as const satisfies Record<string, keyof SeedOptions>;

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function cli(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string' },
      reset: { type: 'boolean', default: false },
      'reset-only': { type: 'boolean', default: false },
      'ignore-maintenance': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      ...Object.fromEntries(Object.keys(NUMERIC_FLAGS).map((flag) => [flag, { type: 'string' as const }])),
    },
  });
  if (values.help || typeof values.config !== 'string') {
    console.log(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const options: Record<string, unknown> = { ignoreMaintenance: values['ignore-maintenance'] === true };
  for (const [flag, option] of Object.entries(NUMERIC_FLAGS)) {
    const raw = (values as Record<string, unknown>)[flag];
    if (typeof raw !== 'string') continue;
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value)) throw new SeedRefusedError(`--${flag}: give a number, not ${JSON.stringify(raw)}`);
    options[option] = value;
  }
  const config = await loadSandboxConfig(values.config);
  const target = `${config.name} (database ${config.postgres.database}, bucket ${config.s3.bucket})`;

  if (values.reset === true || values['reset-only'] === true) {
    const done = await reset(config, { ignoreMaintenance: options.ignoreMaintenance === true });
    console.log(`reset ${target}: ${done.tables} tables truncated, ${done.objects} recording objects deleted in ${(done.durationMs / 1000).toFixed(1)} s`);
    if (values['reset-only'] === true) return;
  }

  const result = await seed(config, options as SeedOptions);
  const rows: Array<[string, string]> = [
    ['organisations', String(result.organisations)],
    ['users', String(result.users)],
    ['resources', String(result.resources)],
    ['safes', String(result.safes)],
    ['credentials', String(result.credentials)],
    ['connectors', String(result.connectors)],
    ['audit entries', String(result.auditEntries)],
    ['sessions', String(result.sessions)],
    ['recordings', `${result.recordings} (${formatBytes(result.recordingBytes)})`],
  ];
  console.log(`seeded ${target} in ${(result.durationMs / 1000).toFixed(1)} s:`);
  for (const [name, value] of rows) console.log(`  ${name.padEnd(16)} ${value}`);
  if (result.sampleResourceId) console.log(`  smoke-test resource: ${result.sampleResourceId}`);
}

if (isEntryPoint(import.meta.url)) {
  cli(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`seed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
