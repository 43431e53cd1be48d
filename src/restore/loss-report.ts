// The loss report, both ways: what exists now that is newer than a backup's consistent point (lost by restoring it),
// and what the backup holds that the deployment no longer has (brought back by restoring it).
import { createHash } from 'node:crypto';
import type * as Minio from 'minio';
import pg from 'pg';
import { z } from 'zod';
import type { PostgresConfig } from '../config/schema';
import { withClient } from '../postgres/connection';

const count = z.number().int().min(0);

/**
 * The key tables counted both ways, each with the column that dates a row's creation: a row the backup holds was
 * created at or before its consistent point.
 */
export const KEY_TABLE_CREATION = { resources: 'created_at', safes: 'created_at', credentials: 'created_at', audit_log: 'at', sessions: 'started_at' } as const;
export type KeyTable = keyof typeof KEY_TABLE_CREATION;
export const LOSS_REPORT_KEY_TABLES = Object.keys(KEY_TABLE_CREATION) as KeyTable[];

const objectsAndBytes = z.object({ objects: count, bytes: count }).strict();

/**
 * What restoring brings back: rows of each key table the backup holds and the live database lacks (the backup's
 * row count minus the live rows created at or before its point), and recordings likewise (the backup's objects and
 * bytes minus the live objects stamped at or before its point). Counts, so a row deleted and another created
 * before the point cancel out; a deletion of rows after a backup shows here, where the "lost" side shows nothing.
 */
const broughtBackSchema = z
  .object({
    resources: count,
    safes: count,
    credentials: count,
    audit_log: count,
    sessions: count,
    recordings: objectsAndBytes.optional(),
  })
  .strict();

/**
 * Rows of a table changed after the backup. A row created after it counts as `created` only; `modified`
 * counts rows the backup holds in an older version, so the two never overlap.
 */
const tableChangesSchema = z.object({ created: count, modified: count }).strict();

/**
 * Counts only, never row data: the report travels through Temporal history and into the confirmation the
 * operator signs, and neither may carry a secret or a customer's audit details.
 */
export const lossReportSchema = z
  .object({
    /** The backup's consistent point (ISO 8601, UTC); everything counted happened after it. */
    since: z.iso.datetime(),
    /** The database that was counted. */
    database: z.string().min(1),
    /** audit_log entries written after `since`. */
    auditEntries: count,
    /** Sessions started after `since`. */
    sessions: count,
    organisations: tableChangesSchema,
    users: tableChangesSchema,
    resources: tableChangesSchema,
    safes: tableChangesSchema,
    /**
     * `rotated`: credentials whose secret was rotated after `since` (rotated_at), whether created before or
     * after; a restore gives back the old secret, which the target system may no longer accept.
     */
    credentials: tableChangesSchema.extend({ rotated: count }).strict(),
    connectors: tableChangesSchema,
    /** Recording objects newer than `since`; absent when the bucket was not counted. */
    recordings: z.object({ bucket: z.string().min(1), objects: count, bytes: count }).strict().optional(),
    /** The other direction; absent when the backup's own counts were not given. */
    broughtBack: broughtBackSchema.optional(),
  })
  .strict();
export type BroughtBack = z.infer<typeof broughtBackSchema>;
export type LossReport = z.infer<typeof lossReportSchema>;

/** The tables counted as created / modified; each has created_at and updated_at (see sandbox/schema.sql). */
const CHANGE_TABLES = ['organisations', 'users', 'resources', 'safes', 'credentials', 'connectors'] as const;

function assertValidDate(since: Date, caller: string): void {
  if (!(since instanceof Date) || Number.isNaN(since.getTime())) {
    throw new RangeError(`${caller}: since must be a valid Date (the backup's consistent point), got ${String(since)}`);
  }
}

export interface RecordingsNewerThanOptions {
  client: Minio.Client;
  bucket: string;
  since: Date;
  /** Count only keys under this prefix. @default '' (the whole bucket) */
  prefix?: string;
  /** Keys under these prefixes are skipped, e.g. a quarantine prefix an earlier restore moved objects to. @default [] */
  excludePrefixes?: readonly string[];
}

/**
 * Objects whose LastModified is after `since`, counted while the listing streams (memory stays flat for any
 * bucket size). S3 listings often give LastModified in whole seconds; such an object stamped in the same second
 * as `since` is counted, since it may have been written after it: over-counting a loss is the safe side.
 */
export async function recordingsNewerThan(options: RecordingsNewerThanOptions): Promise<{ objects: number; bytes: number }> {
  return (await recordingsAround(options)).newer;
}

/** One listing, split at `since`: `newer` as in recordingsNewerThan, `older` the rest (what a backup at `since` may hold). */
export async function recordingsAround(options: RecordingsNewerThanOptions): Promise<{ newer: { objects: number; bytes: number }; older: { objects: number; bytes: number } }> {
  const { client, bucket, since } = options;
  assertValidDate(since, 'recordingsNewerThan');
  const excluded = options.excludePrefixes ?? [];
  const threshold = since.getTime();
  let objects = 0;
  let bytes = 0;
  let olderObjects = 0;
  let olderBytes = 0;
  for await (const item of client.listObjectsV2(bucket, options.prefix ?? '', true) as AsyncIterable<Minio.BucketItem>) {
    if (typeof item.name !== 'string' || !(item.lastModified instanceof Date)) continue;
    const name = item.name;
    if (excluded.some((prefix) => name.startsWith(prefix))) continue;
    const stamped = item.lastModified.getTime();
    const latest = stamped % 1000 === 0 ? stamped + 999 : stamped;
    if (latest > threshold) {
      objects += 1;
      bytes += item.size;
    } else {
      olderObjects += 1;
      olderBytes += item.size;
    }
  }
  return { newer: { objects, bytes }, older: { objects: olderObjects, bytes: olderBytes } };
}

export interface ComputeLossReportOptions {
  /** The live deployment's database; `config.database` is the one counted. */
  config: PostgresConfig;
  password: string | undefined;
  /** The backup's consistent point. */
  since: Date;
  /**
   * The same point by the database's clock, to the microsecond (ISO 8601): rows are counted from it when given. The
   * bucket's clock (`since`) has whole seconds, so rows written in the second of the pause would fall on the wrong side.
   */
  databaseSince?: string;
  /** Also count the recordings bucket (see `recordingsNewerThan`). */
  recordings?: Omit<RecordingsNewerThanOptions, 'since'>;
  /** The backup's own counts (its manifest's): given, the report also says what restoring brings back. */
  backup?: { rowCounts: Record<string, number>; recordings?: { objects: number; bytes: number } };
}

/**
 * Counts what a restore to the backup taken at `since` would overwrite and, given the backup's counts, what it
 * would bring back. One SELECT, so every count comes from the same snapshot even while the control plane writes.
 */
export async function computeLossReport(options: ComputeLossReportOptions): Promise<LossReport> {
  const { config, password, since } = options;
  assertValidDate(since, 'computeLossReport');
  if (options.databaseSince !== undefined && Number.isNaN(Date.parse(options.databaseSince))) {
    throw new RangeError(`computeLossReport: databaseSince must be an ISO 8601 time (the backup's database point), got ${JSON.stringify(options.databaseSince)}`);
  }
  // Live rows created at or before the point: the ones the backup also holds (its count minus these comes back).
  const keptPerTable = LOSS_REPORT_KEY_TABLES.map(
    (table) => `(SELECT count(*) FROM ${pg.escapeIdentifier(table)} WHERE ${pg.escapeIdentifier(KEY_TABLE_CREATION[table])} <= $1) AS ${pg.escapeIdentifier(`kept_${table}`)}`,
  );
  const perTable = CHANGE_TABLES.map((table) => {
    const t = pg.escapeIdentifier(table);
    return `(SELECT json_build_object('created', count(*) FILTER (WHERE created_at > $1), 'modified', count(*) FILTER (WHERE created_at <= $1))
               FROM ${t} WHERE updated_at > $1 OR created_at > $1) AS ${t}`;
  });
  const sql = `SELECT current_database() AS database,
      (SELECT count(*) FROM audit_log WHERE at > $1) AS audit_entries,
      (SELECT count(*) FROM sessions WHERE started_at > $1) AS sessions,
      (SELECT count(*) FROM credentials WHERE rotated_at > $1) AS rotated,
      ${perTable.join(',\n      ')},
      ${keptPerTable.join(',\n      ')}`;

  const row = await withClient(
    config,
    password,
    async (client) => {
      const { rows } = await client.query<Record<string, unknown>>(sql, [options.databaseSince ?? since.toISOString()]);
      return rows[0];
    },
    { applicationName: 'vaultpam-backup loss-report' },
  );
  if (!row) throw new Error(`the loss report query on database "${config.database}" returned no row`);

  const changes = (table: (typeof CHANGE_TABLES)[number]) => {
    const value = row[table] as { created: number | string; modified: number | string };
    return { created: Number(value.created), modified: Number(value.modified) };
  };
  const report: LossReport = {
    since: since.toISOString(),
    database: String(row.database),
    auditEntries: Number(row.audit_entries),
    sessions: Number(row.sessions),
    organisations: changes('organisations'),
    users: changes('users'),
    resources: changes('resources'),
    safes: changes('safes'),
    credentials: { ...changes('credentials'), rotated: Number(row.rotated) },
    connectors: changes('connectors'),
  };
  let liveOlderRecordings: { objects: number; bytes: number } | undefined;
  if (options.recordings) {
    const around = await recordingsAround({ ...options.recordings, since });
    report.recordings = { bucket: options.recordings.bucket, ...around.newer };
    liveOlderRecordings = around.older;
  }
  if (options.backup) {
    const { rowCounts } = options.backup;
    const back = (table: KeyTable) => Math.max(0, (rowCounts[table] ?? 0) - Number(row[`kept_${table}`]));
    const broughtBack: BroughtBack = { resources: back('resources'), safes: back('safes'), credentials: back('credentials'), audit_log: back('audit_log'), sessions: back('sessions') };
    const held = options.backup.recordings;
    if (held && liveOlderRecordings) {
      broughtBack.recordings = { objects: Math.max(0, held.objects - liveOlderRecordings.objects), bytes: Math.max(0, held.bytes - liveOlderRecordings.bytes) };
    }
    report.broughtBack = broughtBack;
  }
  return lossReportSchema.parse(report);
}

/** True when restoring would overwrite nothing the report counts (what it brings back is not a loss). */
export function lossReportIsEmpty(report: LossReport): boolean {
  const { since: _since, database: _database, recordings, broughtBack: _broughtBack, ...rest } = report;
  const counts = Object.values(rest).flatMap((value) => (typeof value === 'number' ? [value] : Object.values(value)));
  return counts.every((n) => n === 0) && (recordings === undefined || recordings.objects === 0);
}

/** JSON with object keys sorted at every level and undefined members left out: one text per value. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * SHA-256 (hex) of the report's canonical JSON. The restore's confirmation echoes it, which proves the operator
 * confirmed these very counts; a report that changed since (more writes) no longer matches.
 */
export function lossReportDigest(report: LossReport): string {
  const parsed = lossReportSchema.safeParse(report);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new TypeError(`cannot digest the loss report: it is not one (${problems.join('; ')}); pass what computeLossReport returned`);
  }
  return createHash('sha256').update(canonicalJson(parsed.data)).digest('hex');
}
