// Row counts and content checksums of named tables, on any open client (a snapshot's transaction or a plain one).
import pg from 'pg';
import { TableNotFoundError } from './postgres-errors';
import { startProgress, type ToolProgress } from './tool-process';

/** Called per table and every second while a table's query runs: an exact count of a large table takes minutes. */
export type TableProgress = (progress: ToolProgress) => void;

/**
 * Quotes "table" or "schema.table" as written in a manifest (the unquoted spelling pg_restore --list prints).
 * Each part is quoted as is, so `public.Audit` names the table created as "Audit".
 */
export function quoteTableName(name: string): string {
  const dot = name.indexOf('.');
  const [schema, table] = dot === -1 ? ['public', name] : [name.slice(0, dot), name.slice(dot + 1)];
  if (!schema || !table) throw new Error(`cannot read a table name from ${JSON.stringify(name)}; write it as "schema.table"`);
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`;
}

async function currentDatabase(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
  return rows[0]?.db ?? '?';
}

/** Runs one query per table, reporting which table it is on. */
async function perTable<T>(
  client: pg.ClientBase,
  tables: readonly string[],
  what: string,
  sql: (quoted: string) => string,
  read: (row: Record<string, unknown>) => T,
  onProgress?: TableProgress,
): Promise<Record<string, T>> {
  const result: Record<string, T> = {};
  const progress = startProgress(onProgress, what);
  try {
    // One query per table, in order: inside a snapshot's transaction they all see the same state anyway.
    for (const table of tables) {
      progress.phase(`${what} of ${table}`);
      result[table] = await oneTable(client, table, sql, read);
    }
  } finally {
    progress.stop();
  }
  return result;
}

/** Throws a TableNotFoundError naming the table, rather than the server's bare 42P01. */
async function oneTable<T>(client: pg.ClientBase, table: string, sql: (quoted: string) => string, read: (row: Record<string, unknown>) => T): Promise<T> {
  // regclass resolution first, so a missing table is a clear error and not an aborted transaction.
  const { rows: found } = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [quoteTableName(table)]);
  if (!found[0]?.oid) throw new TableNotFoundError(table, await currentDatabase(client));
  const { rows } = await client.query(sql(quoteTableName(table)));
  const row = rows[0] as Record<string, unknown> | undefined;
  if (!row) throw new Error(`no result counting ${table}`);
  return read(row);
}

/** Exact `count(*)` of each table. */
export function countRows(client: pg.ClientBase, tables: readonly string[], onProgress?: TableProgress): Promise<Record<string, number>> {
  return perTable(client, tables, 'counting rows', (t) => `SELECT count(*) AS n FROM ${t}`, (row) => Number(row.n), onProgress);
}

/**
 * An order-independent digest of each table's content: md5 of the sorted per-row md5s. Hashing rows first keeps
 * the aggregated string at 32 bytes a row, so tables of tens of millions of rows stay under the 1 GB text limit.
 * Equal digests mean equal multisets of rows as text (column order and types included).
 */
export function checksumRows(client: pg.ClientBase, tables: readonly string[], onProgress?: TableProgress): Promise<Record<string, string>> {
  return perTable(
    client,
    tables,
    'checksumming rows',
    (t) => `SELECT md5(coalesce(string_agg(h, '' ORDER BY h COLLATE "C"), '')) AS digest FROM (SELECT md5(r::text) AS h FROM ${t} AS r) AS rows`,
    (row) => String(row.digest),
    onProgress,
  );
}

/** A table named "schema.table" (unquoted, as quoteTableName reads it) and its size in bytes. */
export interface TableSize {
  table: string;
  bytes: number;
}

/**
 * Ordinary tables larger than `minBytes` (pg_table_size: heap and TOAST, not indexes), largest first. Sizes are the
 * files' sizes now, not the snapshot's; that only decides how a dump is split, never what it holds.
 */
export async function largeTables(client: pg.ClientBase, minBytes: number): Promise<TableSize[]> {
  const { rows } = await client.query<{ schema: string; name: string; bytes: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, pg_table_size(c.oid) AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        AND pg_table_size(c.oid) > $1
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY 3 DESC, 1, 2`,
    [minBytes],
  );
  // A dot inside a schema name would make "schema.table" ambiguous: such a table stays in the main stream.
  return rows.filter((r) => !r.schema.includes('.')).map((r) => ({ table: `${r.schema}.${r.name}`, bytes: Number(r.bytes) }));
}

/**
 * A "schema.table" name as a pg_dump/pg_restore `-t` pattern that matches that table only: inside double quotes
 * the pattern characters (* ? .) are literal, and a double quote is doubled.
 */
export function tablePattern(name: string): string {
  const dot = name.indexOf('.');
  const [schema, table] = dot === -1 ? ['public', name] : [name.slice(0, dot), name.slice(dot + 1)];
  const quote = (part: string) => `"${part.replace(/"/g, '""')}"`;
  return `${quote(schema)}.${quote(table)}`;
}
