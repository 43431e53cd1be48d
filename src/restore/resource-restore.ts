// Scoped restore: one resource and what hangs off it, copied from a restored backup's database into the live one.
//
// What "restore this resource" means here:
// - Configuration rows (the resource, its safes, their credentials) get the backup's values: a deleted row is
//   re-inserted, an existing one is updated, secrets included (putting the old secret back is the point).
//   Every column comes from the backup except updated_at, which becomes the time of the restore: the schema's
//   trigger makes updated_at mean "last written in this database", and a later loss report must see that the
//   restore changed these rows.
// - History rows (the resource's sessions and audit_log entries) that are missing in live are re-inserted exactly,
//   original ids included; existing ones are never touched, since history is append-only.
// - Nothing is deleted: rows created in live after the backup (a new safe or credential) stay.
// - A re-inserted session whose user no longer exists keeps no user (NULL), as the schema's ON DELETE SET NULL
//   would have left it.
import pg from 'pg';
import type { PostgresConfig } from '../config/schema';
import { connectClient, describeTarget, withClient } from '../postgres/connection';
import { validateDatabaseName } from '../postgres/restore';

/** Stable codes an operator can search for. */
export type ResourceRestoreErrorCode =
  | 'VPB_ERR_RESTORE_RESOURCE_NOT_IN_BACKUP'
  | 'VPB_ERR_RESTORE_ORGANISATION_MISSING'
  | 'VPB_ERR_RESTORE_SCHEMA_MISMATCH'
  | 'VPB_ERR_RESTORE_INPUT_INVALID';

export class ResourceRestoreError extends Error {
  readonly code: ResourceRestoreErrorCode;
  constructor(code: ResourceRestoreErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'ResourceRestoreError';
    this.code = code;
  }
}

/** The tables a resource restore writes, parents first. */
export const RESTORED_TABLES = ['resources', 'safes', 'credentials', 'sessions', 'audit_log'] as const;
export type RestoredTable = (typeof RESTORED_TABLES)[number];

interface TablePlan {
  table: RestoredTable;
  /** Selects the resource's rows in the backup; $1 is the resource id. */
  where: string;
  idType: 'text' | 'uuid' | 'bigint';
  /** configuration: upsert to the backup's values; history: insert what is missing, never update. */
  kind: 'configuration' | 'history';
}

// Parents before children, so every foreign key finds its row.
const PLANS: readonly TablePlan[] = [
  { table: 'resources', where: 'id = $1', idType: 'text', kind: 'configuration' },
  { table: 'safes', where: 'resource_id = $1', idType: 'text', kind: 'configuration' },
  { table: 'credentials', where: 'safe_id IN (SELECT id FROM public.safes WHERE resource_id = $1)', idType: 'text', kind: 'configuration' },
  { table: 'sessions', where: 'resource_id = $1', idType: 'uuid', kind: 'history' },
  { table: 'audit_log', where: 'resource_id = $1', idType: 'bigint', kind: 'history' },
];

export interface TableRestoreCounts {
  /** Rows missing in live, written from the backup. */
  inserted: number;
  /** Rows present in live with other values, set to the backup's. */
  updated: number;
  /** Rows present in live that were left as they are (equal to the backup, or history). */
  unchanged: number;
}

export interface ResourceRestoreResult {
  resourceId: string;
  tables: Record<RestoredTable, TableRestoreCounts>;
  /** Re-inserted sessions whose user no longer exists in live; their user_id is NULL. */
  sessionsWithoutUser: number;
  /** id of the `restore.resource` audit entry written in live (a bigint, as text). */
  auditEntryId: string;
  durationMs: number;
}

export interface ResourceRestoreOptions {
  /** The cluster both databases live on; its `database` is not used. */
  config: PostgresConfig;
  password: string | undefined;
  /** The database a backup's dump was restored into; only read. */
  scratchDatabase: string;
  /** The deployment's database, written in one transaction. */
  liveDatabase: string;
  resourceId: string;
  /** Recorded in the audit entry's details. */
  backupId?: string;
  /** The audit entry's actor. @default 'vaultpam-backup' */
  actor?: string;
  /** Rows per batch read from the backup and written to live. @default 1000 */
  batchSize?: number;
  /** Longest wait for a row lock the live control plane holds before giving up. @default 30000 */
  lockTimeoutMs?: number;
}

function validate(options: ResourceRestoreOptions): void {
  validateDatabaseName(options.scratchDatabase);
  validateDatabaseName(options.liveDatabase);
  if (options.scratchDatabase === options.liveDatabase) {
    throw new ResourceRestoreError(
      'VPB_ERR_RESTORE_INPUT_INVALID',
      `scratchDatabase and liveDatabase are both "${options.liveDatabase}"; restore the backup's dump into a database of its own first`,
    );
  }
  if (typeof options.resourceId !== 'string' || options.resourceId.trim() === '') {
    throw new ResourceRestoreError('VPB_ERR_RESTORE_INPUT_INVALID', 'resourceId is empty; give the id of the resource to restore (res_...)');
  }
  const batch = options.batchSize ?? 1000;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new ResourceRestoreError('VPB_ERR_RESTORE_INPUT_INVALID', `batchSize must be a positive integer, got ${String(options.batchSize)}`);
  }
  const lockTimeout = options.lockTimeoutMs ?? 30_000;
  if (!Number.isInteger(lockTimeout) || lockTimeout < 1) {
    throw new ResourceRestoreError('VPB_ERR_RESTORE_INPUT_INVALID', `lockTimeoutMs must be a positive integer (milliseconds), got ${String(options.lockTimeoutMs)}`);
  }
}

async function tableColumns(client: pg.ClientBase, table: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT column_name AS name FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((row) => row.name);
}

/**
 * Columns both databases have, in live's order. A column only the backup has cannot be written; one only live
 * has keeps its default on insert and its value on update.
 */
async function sharedColumns(scratch: pg.ClientBase, live: pg.ClientBase, plan: TablePlan, names: { scratch: string; live: string }): Promise<string[]> {
  const [inScratch, inLive] = await Promise.all([tableColumns(scratch, plan.table), tableColumns(live, plan.table)]);
  for (const [columns, where] of [
    [inScratch, `the backup's database "${names.scratch}"`],
    [inLive, `the live database "${names.live}"`],
  ] as const) {
    if (columns.length === 0) {
      throw new ResourceRestoreError(
        'VPB_ERR_RESTORE_SCHEMA_MISMATCH',
        `table public.${plan.table} does not exist in ${where}; both must hold a VaultPAM schema (is the database name right?)`,
      );
    }
  }
  const available = new Set(inScratch);
  const shared = inLive.filter((column) => available.has(column));
  if (!shared.includes('id')) {
    throw new ResourceRestoreError('VPB_ERR_RESTORE_SCHEMA_MISMATCH', `table public.${plan.table} has no id column in both databases`);
  }
  return shared;
}

interface Page {
  rows: string;
  count: number;
  lastId: string | null;
}

async function readPage(scratch: pg.ClientBase, plan: TablePlan, columns: readonly string[], resourceId: string, after: string | null, limit: number): Promise<Page> {
  const list = columns.map((c) => pg.escapeIdentifier(c)).join(', ');
  const keyset = after === null ? '' : ` AND id > $2::${plan.idType}`;
  const params: unknown[] = after === null ? [resourceId] : [resourceId, after];
  // Text, not parsed JSON: values (timestamps to the microsecond, jsonb details) reach live exactly as stored.
  const { rows } = await scratch.query<{ rows: string; n: string; last: string | null }>(
    `SELECT coalesce(json_agg(t ORDER BY t.id), '[]')::text AS rows, count(*) AS n, (array_agg(t.id::text ORDER BY t.id DESC))[1] AS last
       FROM (SELECT ${list} FROM public.${pg.escapeIdentifier(plan.table)} WHERE ${plan.where}${keyset} ORDER BY id LIMIT ${limit}) t`,
    params,
  );
  const row = rows[0];
  return { rows: row?.rows ?? '[]', count: Number(row?.n ?? 0), lastId: row?.last ?? null };
}

/** Writes one page into live; returns its counts and how many re-inserted sessions lost their user. */
async function writePage(live: pg.ClientBase, plan: TablePlan, columns: readonly string[], page: string): Promise<TableRestoreCounts & { withoutUser: number }> {
  const table = `public.${pg.escapeIdentifier(plan.table)}`;
  const q = (c: string) => pg.escapeIdentifier(c);
  const detachUser = plan.table === 'sessions' && columns.includes('user_id');
  const values = columns.map((c) => {
    if (plan.kind === 'configuration' && c === 'updated_at') return 'now()';
    if (detachUser && c === 'user_id') return 'CASE WHEN EXISTS (SELECT 1 FROM public.users u WHERE u.id = i.user_id) THEN i.user_id END';
    return `i.${q(c)}`;
  });
  const compared = columns.filter((c) => c !== 'id' && c !== 'updated_at');
  const conflict =
    plan.kind === 'history' || compared.length === 0
      ? 'ON CONFLICT (id) DO NOTHING'
      : `ON CONFLICT (id) DO UPDATE SET ${compared.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ')}
           WHERE (${compared.map((c) => `t.${q(c)}`).join(', ')}) IS DISTINCT FROM (${compared.map((c) => `EXCLUDED.${q(c)}`).join(', ')})`;
  const withoutUser = detachUser
    ? `(SELECT count(*) FROM incoming i WHERE i.user_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = i.user_id)
          AND NOT EXISTS (SELECT 1 FROM existing e WHERE e.id = i.id))`
    : '0';
  // One statement: `existing` sees live as it was before `written`, which tells inserts from updates.
  const { rows } = await live.query<{ total: string; existing: string; written: string; without_user: string }>(
    `WITH incoming AS (SELECT * FROM json_populate_recordset(NULL::${table}, $1::json)),
          existing AS (SELECT t.id FROM ${table} t JOIN incoming i ON i.id = t.id),
          written AS (
            INSERT INTO ${table} AS t (${columns.map(q).join(', ')})
            SELECT ${values.join(', ')} FROM incoming i
            ${conflict}
            RETURNING t.id)
     SELECT (SELECT count(*) FROM incoming) AS total, (SELECT count(*) FROM existing) AS existing,
            (SELECT count(*) FROM written) AS written, ${withoutUser} AS without_user`,
    [page],
  );
  const row = rows[0];
  const total = Number(row?.total ?? 0);
  const existing = Number(row?.existing ?? 0);
  const written = Number(row?.written ?? 0);
  const inserted = total - existing;
  const updated = written - inserted;
  return { inserted, updated, unchanged: existing - updated, withoutUser: Number(row?.without_user ?? 0) };
}

/**
 * Copies one resource and what hangs off it from `scratchDatabase` (a backup's dump, restored) into
 * `liveDatabase`, in one transaction, leaving every other row alone; see the top of this file for the exact
 * semantics. Refuses, changing nothing, when the backup does not hold the resource.
 */
export async function restoreResource(options: ResourceRestoreOptions): Promise<ResourceRestoreResult> {
  validate(options);
  const { config, password, scratchDatabase, liveDatabase, resourceId } = options;
  const batchSize = options.batchSize ?? 1000;
  const started = performance.now();

  const scratch = await connectClient(config, password, { database: scratchDatabase, applicationName: 'vaultpam-backup resource-restore (read)' });
  try {
    const live = await connectClient(config, password, { database: liveDatabase, applicationName: 'vaultpam-backup resource-restore' });
    try {
      // Nobody writes the scratch database; one snapshot for every read makes that a guarantee, not an assumption.
      await scratch.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const names = { scratch: scratchDatabase, live: liveDatabase };
      const columns = new Map<RestoredTable, string[]>();
      for (const plan of PLANS) columns.set(plan.table, await sharedColumns(scratch, live, plan, names));

      const { rows: found } = await scratch.query<{ organisation_id: string }>('SELECT organisation_id FROM public.resources WHERE id = $1', [resourceId]);
      const resource = found[0];
      if (!resource) {
        throw new ResourceRestoreError(
          'VPB_ERR_RESTORE_RESOURCE_NOT_IN_BACKUP',
          `resource "${resourceId}" is not in the backup (${describeTarget(config, scratchDatabase)}): ` +
            'the backup was taken before it was created or after it was deleted; nothing was changed. Check the id, or choose a backup that holds it',
        );
      }

      await live.query('BEGIN');
      try {
        await live.query(`SET LOCAL lock_timeout = ${options.lockTimeoutMs ?? 30_000}`);
        const { rowCount } = await live.query('SELECT 1 FROM public.organisations WHERE id = $1', [resource.organisation_id]);
        if ((rowCount ?? 0) === 0) {
          throw new ResourceRestoreError(
            'VPB_ERR_RESTORE_ORGANISATION_MISSING',
            `resource "${resourceId}" belongs to organisation "${resource.organisation_id}", which no longer exists in the live database "${liveDatabase}"; ` +
              'nothing was changed. Restore the whole deployment (scope full), or recreate the organisation with that id first',
          );
        }

        const tables = {} as Record<RestoredTable, TableRestoreCounts>;
        let sessionsWithoutUser = 0;
        for (const plan of PLANS) {
          const planColumns = columns.get(plan.table) ?? [];
          const totals: TableRestoreCounts = { inserted: 0, updated: 0, unchanged: 0 };
          for (let after: string | null = null; ; ) {
            const page = await readPage(scratch, plan, planColumns, resourceId, after, batchSize);
            if (page.count === 0) break;
            const counts = await writePage(live, plan, planColumns, page.rows);
            totals.inserted += counts.inserted;
            totals.updated += counts.updated;
            totals.unchanged += counts.unchanged;
            sessionsWithoutUser += counts.withoutUser;
            if (page.count < batchSize || page.lastId === null) break;
            after = page.lastId;
          }
          tables[plan.table] = totals;
        }

        // Re-inserted entries carry ids the sequence handed out long ago; raise it only if live somehow lags
        // behind them, so the next entry (ours first) can never collide.
        await live.query(
          `SELECT setval(s.seq, m.max_id)
             FROM (SELECT pg_get_serial_sequence('public.audit_log', 'id')::regclass AS seq) s,
                  (SELECT max(id) AS max_id FROM public.audit_log) m
            WHERE m.max_id > coalesce(pg_sequence_last_value(s.seq), 0)`,
        );
        const details = {
          ...(options.backupId !== undefined ? { backupId: options.backupId } : {}),
          scratchDatabase,
          tables,
          sessionsWithoutUser,
        };
        const { rows: entry } = await live.query<{ id: string }>(
          `INSERT INTO public.audit_log (actor, action, resource_id, details) VALUES ($1, 'restore.resource', $2, $3::jsonb) RETURNING id::text AS id`,
          [options.actor ?? 'vaultpam-backup', resourceId, JSON.stringify(details)],
        );
        await live.query('COMMIT');
        return {
          resourceId,
          tables,
          sessionsWithoutUser,
          auditEntryId: entry[0]?.id ?? '',
          durationMs: Math.round(performance.now() - started),
        };
      } catch (error) {
        await live.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      await live.end().catch(() => undefined);
    }
  } finally {
    await scratch.query('ROLLBACK').catch(() => undefined);
    await scratch.end().catch(() => undefined);
  }
}

export interface ResourceRecordingKeysOptions {
  config: PostgresConfig;
  password: string | undefined;
  /** Usually the scratch database: the backup's sessions are the recordings to copy back. */
  database: string;
  resourceId: string;
}

/** Object keys of the recordings of the resource's sessions in `database`, oldest session first. */
export async function resourceRecordingKeys(options: ResourceRecordingKeysOptions): Promise<string[]> {
  validateDatabaseName(options.database);
  return withClient(
    options.config,
    options.password,
    async (client) => {
      const { rows } = await client.query<{ key: string }>(
        'SELECT recording_key AS key FROM public.sessions WHERE resource_id = $1 ORDER BY started_at, id',
        [options.resourceId],
      );
      return rows.map((row) => row.key);
    },
    { database: options.database, applicationName: 'vaultpam-backup resource-restore' },
  );
}
