// The restore step's PostgreSQL side: check a dump, restore it into a fresh database, swap databases by rename.
import { spawnSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import pg from 'pg';
import type { PostgresConfig } from '../config/schema';
import { findPgTool } from './binaries';
import { serverVersion, withClient } from './connection';
import {
  DatabaseStateError,
  InvalidDatabaseNameError,
  InvalidDumpError,
  PgToolAbortedError,
  RestoreFailedError,
} from './postgres-errors';
import { checksumRows, countRows, type TableProgress } from './table-stats';
import { describeExit, libpqArguments, spawnPgTool, startProgress, type ToolProgress } from './tool-process';

// ---------------------------------------------------------------------------------------------------------------
// Feeding a stream into a tool's stdin

interface StdinFeed {
  /** Resolves when the source ended, rejects when it failed (e.g. decryption found a tampered chunk). */
  ended: Promise<void>;
  bytes(): number;
  /** Stop writing to the tool (it exited) but keep reading the source to its end. */
  stopWriting(): void;
}

/**
 * Copies `source` into a child's stdin with backpressure. A tool may stop reading before the end (it failed, or
 * it had all it needed): EPIPE then only stops the writing, and the source keeps flowing so that whatever hashes
 * or authenticates it upstream still sees every byte.
 */
function feedStdin(source: Readable, stdin: Writable, onBytes?: (bytes: number) => void): StdinFeed {
  let open = true;
  let bytes = 0;
  const stopWriting = (): void => {
    if (!open) return;
    open = false;
    source.resume();
  };
  stdin.on('error', stopWriting);
  stdin.on('close', stopWriting);
  stdin.on('drain', () => source.resume());
  const ended = new Promise<void>((resolve, reject) => {
    source.once('end', () => {
      if (open) stdin.end();
      resolve();
    });
    source.once('error', reject);
    source.once('close', () => {
      if (!source.readableEnded) reject(new Error('the dump stream was closed before its end'));
    });
  });
  ended.catch(() => undefined);
  source.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    onBytes?.(bytes);
    if (open && !stdin.write(chunk)) source.pause();
  });
  return { ended, bytes: () => bytes, stopWriting };
}

// ---------------------------------------------------------------------------------------------------------------
// pg_restore --list

export interface DumpListing {
  /** Entries pg_restore lists (tables, table data, indexes, constraints, sequences, ...). */
  entries: number;
  /** Tables the archive defines, as "schema.table" in the archive's order. */
  tables: string[];
  /** Tables whose rows the archive holds ("TABLE DATA" entries), as "schema.table". */
  tablesWithData: string[];
  /** From the archive header: the database it was dumped from. */
  database?: string;
  /** e.g. "15.18 (Debian 15.18-0+deb12u1)". */
  dumpedFromVersion?: string;
  dumpedByVersion?: string;
  /** Bytes read from the stream (all of it unless `drain: false`). */
  bytes: number;
}

export interface ListDumpOptions {
  /** Where to find pg_restore (its binDir). */
  config?: Pick<PostgresConfig, 'binDir'>;
  /** Path of pg_restore; default: `findPgTool('pg_restore', config)`. */
  pgRestore?: string;
  signal?: AbortSignal;
  /**
   * Read the stream to its end after pg_restore has the table of contents, so a decrypting or hashing stage
   * upstream processes (and authenticates) every byte. With false the stream is destroyed once listed.
   * @default true
   */
  drain?: boolean;
  /** Progress until the listing and the drain are done: on every chunk, and every second while nothing moves. */
  onProgress?: (progress: ToolProgress) => void;
}

const TOC_LINE = /^(\d+);\s+\d+\s+\d+\s+(.*)$/;

/** "TABLE public audit_log vaultpam" -> "public.audit_log" (the owner is the last word, when present). */
function entryObjectName(rest: string): string | undefined {
  const words = rest.split(' ').filter(Boolean);
  const [schema, ...others] = words;
  if (!schema || others.length === 0) return undefined;
  const nameWords = others.length > 1 ? others.slice(0, -1) : others;
  return `${schema}.${nameWords.join(' ')}`;
}

export function parseDumpListing(text: string): Omit<DumpListing, 'bytes'> & { format?: string } {
  const listing: Omit<DumpListing, 'bytes'> & { format?: string } = { entries: 0, tables: [], tablesWithData: [] };
  for (const line of text.split('\n')) {
    if (line.startsWith(';')) {
      const header = /^;\s+([A-Za-z_ ]+):\s+(.*)$/.exec(line);
      if (!header) continue;
      const [, key, value] = header;
      if (key === 'dbname') listing.database = value;
      else if (key === 'Format') listing.format = value;
      else if (key === 'Dumped from database version') listing.dumpedFromVersion = value;
      else if (key === 'Dumped by pg_dump version') listing.dumpedByVersion = value;
      continue;
    }
    const entry = TOC_LINE.exec(line);
    if (!entry) continue;
    listing.entries += 1;
    const rest = entry[2] ?? '';
    if (rest.startsWith('TABLE DATA ')) {
      const name = entryObjectName(rest.slice('TABLE DATA '.length));
      if (name) listing.tablesWithData.push(name);
    } else if (rest.startsWith('TABLE ')) {
      const name = entryObjectName(rest.slice('TABLE '.length));
      if (name) listing.tables.push(name);
    }
  }
  return listing;
}

/**
 * Pipes an (already decrypted) custom-format archive into `pg_restore --list` and reads its table of contents.
 * Rejects with InvalidDumpError when pg_restore cannot read it, and with the stream's own error when the stream
 * fails (a decryption error is the real cause, not the truncated archive it leaves behind).
 */
export async function listDump(stream: Readable, options: ListDumpOptions = {}): Promise<DumpListing> {
  const bin = options.pgRestore ?? findPgTool('pg_restore', options.config);
  const drain = options.drain ?? true;
  const tool = spawnPgTool({
    tool: 'pg_restore --list',
    bin,
    args: ['--list'],
    password: undefined,
    stdin: 'pipe',
    stdout: 'pipe',
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const { stdin, stdout } = tool.child;
  if (!stdin || !stdout) throw new Error('pg_restore was spawned without pipes');

  let listing = '';
  stdout.setEncoding('utf8');
  stdout.on('data', (chunk: string) => {
    listing += chunk;
  });
  const progress = startProgress(options.onProgress, 'pg_restore --list: reading the table of contents');
  const feed = feedStdin(stream, stdin, (bytes) => progress.bytes(bytes));
  let sourceError: unknown;
  feed.ended.catch((err: unknown) => {
    sourceError = err;
    tool.child.kill('SIGTERM');
  });
  const onAbort = (): void => {
    stream.destroy(new PgToolAbortedError('pg_restore --list'));
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const exit = await tool.exit;
    if (exit.aborted || options.signal?.aborted) throw new PgToolAbortedError('pg_restore --list');
    if (sourceError) throw sourceError;
    if (exit.spawnError) throw new Error(describeExit('pg_restore', exit));
    if (exit.code !== 0) {
      stream.destroy();
      throw new InvalidDumpError(exit.stderrTail);
    }
    const { format, ...parsed } = parseDumpListing(listing);
    if (format !== undefined && format !== 'CUSTOM') {
      stream.destroy();
      throw new InvalidDumpError(`the archive is in ${format} format, not CUSTOM`);
    }
    if (drain) {
      // Decrypting and hashing the rest authenticates every byte: on a large dump, the longer part of the check.
      progress.phase('pg_restore --list: reading the rest of the archive');
      feed.stopWriting();
      await feed.ended;
      if (options.signal?.aborted) throw new PgToolAbortedError('pg_restore --list');
    } else {
      stream.destroy();
    }
    return { ...parsed, bytes: feed.bytes() };
  } finally {
    progress.stop();
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The table-of-contents lines of one section of an archive (`pg_restore --list --section=...`), for `-L` lists.
 * Only the table of contents is read: the stream is destroyed once pg_restore has printed it.
 */
export async function listSectionEntries(stream: Readable, section: RestoreSection | 'all', options: ArchiveTextOptions = {}): Promise<string[]> {
  const text = await archiveText(stream, ['--list', ...(section === 'all' ? [] : [`--section=${section}`])], options);
  return text.split('\n').filter((line) => TOC_LINE.test(line));
}

/**
 * The dependencies of each post-data entry by its dump id (`pg_restore --verbose --section=post-data -f -`, whose
 * comments name them): the table an index or constraint belongs to is among them. The DDL text stays in memory.
 */
export async function postDataDependencies(stream: Readable, options: ArchiveTextOptions = {}): Promise<Map<number, number[]>> {
  const text = await archiveText(stream, ['--verbose', '--section=post-data', '--file=-'], options);
  const dependencies = new Map<number, number[]>();
  let current: number | undefined;
  for (const line of text.split('\n')) {
    const entry = /^-- TOC entry (\d+) /.exec(line);
    if (entry) current = Number(entry[1]);
    const deps = /^-- Dependencies: ([\d ]+)$/.exec(line);
    if (deps && current !== undefined) dependencies.set(current, deps[1]!.trim().split(/\s+/).map(Number));
  }
  return dependencies;
}

export interface ArchiveTextOptions {
  config?: Pick<PostgresConfig, 'binDir'>;
  pgRestore?: string;
  signal?: AbortSignal;
}

/** What pg_restore prints for `args` from the archive's table of contents; the stream is destroyed once it exits. */
async function archiveText(stream: Readable, args: string[], options: ArchiveTextOptions): Promise<string> {
  const bin = options.pgRestore ?? findPgTool('pg_restore', options.config);
  const tool = spawnPgTool({ tool: 'pg_restore --list', bin, args, password: undefined, stdin: 'pipe', stdout: 'pipe', ...(options.signal ? { signal: options.signal } : {}) });
  const { stdin, stdout } = tool.child;
  if (!stdin || !stdout) throw new Error('pg_restore was spawned without pipes');
  let text = '';
  stdout.setEncoding('utf8');
  stdout.on('data', (chunk: string) => {
    text += chunk;
  });
  const feed = feedStdin(stream, stdin);
  let sourceError: unknown;
  feed.ended.catch((err: unknown) => {
    sourceError = err;
    tool.child.kill('SIGTERM');
  });
  const exit = await tool.exit;
  const failed = sourceError;
  stream.destroy();
  if (exit.aborted) throw new PgToolAbortedError('pg_restore --list');
  if (failed) throw failed;
  if (exit.code !== 0) throw new InvalidDumpError(exit.stderrTail || describeExit('pg_restore', exit));
  return text;
}

/** "3280; 1259 16494 INDEX public audit_log_at_idx owner" -> { id: 3280, type: "INDEX public audit_log_at_idx owner" }. */
export function tocEntry(line: string): { id: number; rest: string } | undefined {
  const m = TOC_LINE.exec(line);
  return m ? { id: Number(m[1]), rest: m[2] ?? '' } : undefined;
}

/** The "schema.table" of a TABLE entry's line, else undefined. */
export function tableOfEntry(line: string): string | undefined {
  const entry = tocEntry(line);
  return entry?.rest.startsWith('TABLE ') && !entry.rest.startsWith('TABLE DATA ') ? entryObjectName(entry.rest.slice('TABLE '.length)) : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Database names and administration

const DATABASE_NAME = /^[A-Za-z0-9_]{1,63}$/;

/** Throws InvalidDatabaseNameError unless the name is 1-63 letters, digits or underscores. */
export function validateDatabaseName(name: string): void {
  if (!DATABASE_NAME.test(name)) throw new InvalidDatabaseNameError(name);
}

export interface AdminOptions {
  /**
   * The database to connect to for CREATE / DROP / ALTER DATABASE (never the one being changed).
   * @default 'postgres'
   */
  maintenanceDatabase?: string;
}

function withAdmin<T>(config: PostgresConfig, password: string | undefined, options: AdminOptions, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(config, password, fn, { database: options.maintenanceDatabase ?? 'postgres', applicationName: 'vaultpam-backup admin' });
}

function sqlState(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

async function exists(client: pg.ClientBase, name: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  return (rowCount ?? 0) > 0;
}

/** Disconnects every other session from `name`; needs superuser or membership in pg_signal_backend. */
async function terminateBackends(client: pg.ClientBase, name: string): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    'SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
  return Number(rows[0]?.n ?? 0);
}

async function otherSessions(client: pg.ClientBase, name: string): Promise<number> {
  const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
  return Number(rows[0]?.n ?? 0);
}

function busyError(name: string, action: string): DatabaseStateError {
  return new DatabaseStateError(
    'VPB_ERR_PG_DATABASE_BUSY',
    `cannot ${action} database "${name}": other sessions are still connected; stop the services that use it, or pass force: true`,
  );
}

export async function databaseExists(config: PostgresConfig, password: string | undefined, name: string, options: AdminOptions = {}): Promise<boolean> {
  validateDatabaseName(name);
  return withAdmin(config, password, options, (client) => exists(client, name));
}

export interface CreateDatabaseOptions extends AdminOptions {
  /**
   * Copy template0 rather than template1: nothing a DBA added to template1 ends up beside the restored objects.
   * @default true
   */
  template0?: boolean;
  /** Succeed without change when the database already exists (a retried step). @default false */
  ifNotExists?: boolean;
}

/** CREATE DATABASE; resolves `{ created: false }` only with `ifNotExists` and an existing database. */
export async function createDatabase(
  config: PostgresConfig,
  password: string | undefined,
  name: string,
  options: CreateDatabaseOptions = {},
): Promise<{ created: boolean }> {
  validateDatabaseName(name);
  return withAdmin(config, password, options, async (client) => {
    const template = (options.template0 ?? true) ? ' TEMPLATE template0' : '';
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}${template}`);
      return { created: true };
    } catch (err) {
      if (sqlState(err) !== '42P04') throw err;
      if (options.ifNotExists) return { created: false };
      throw new DatabaseStateError('VPB_ERR_PG_DATABASE_EXISTS', `database "${name}" already exists; drop it first or choose another name`);
    }
  });
}

export interface DropDatabaseOptions extends AdminOptions {
  /** Succeed without change when the database does not exist. @default false */
  ifExists?: boolean;
  /** Disconnect other sessions first (`WITH (FORCE)` on PostgreSQL 13+, pg_terminate_backend before). @default false */
  force?: boolean;
}

/** DROP DATABASE; resolves `{ dropped: false }` only with `ifExists` and a missing database. */
export async function dropDatabase(
  config: PostgresConfig,
  password: string | undefined,
  name: string,
  options: DropDatabaseOptions = {},
): Promise<{ dropped: boolean }> {
  validateDatabaseName(name);
  return withAdmin(config, password, options, async (client) => {
    if (!(await exists(client, name))) {
      if (options.ifExists) return { dropped: false };
      throw new DatabaseStateError('VPB_ERR_PG_DATABASE_MISSING', `cannot drop database "${name}": it does not exist`);
    }
    const { versionNum } = await serverVersion(client);
    const nativeForce = options.force && versionNum >= 130000;
    if (options.force && !nativeForce) await terminateBackends(client, name);
    // The server would wait 5 s for other sessions before failing; say so at once instead.
    if (!options.force && (await otherSessions(client, name)) > 0) throw busyError(name, 'drop');
    try {
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}${nativeForce ? ' WITH (FORCE)' : ''}`);
    } catch (err) {
      if (sqlState(err) === '55006') throw busyError(name, 'drop');
      throw err;
    }
    return { dropped: true };
  });
}

export interface RenameDatabaseOptions extends AdminOptions {
  /** Tries of terminate-then-rename; a client that reconnects between the two makes one try fail. @default 5 */
  attempts?: number;
}

/**
 * Renames `from` to `to`, disconnecting every other session on `from` first (ALTER DATABASE ... RENAME needs
 * it alone). The swap of a restored database is two of these; each is one catalog update, atomic on its own.
 */
export async function renameDatabase(
  config: PostgresConfig,
  password: string | undefined,
  from: string,
  to: string,
  options: RenameDatabaseOptions = {},
): Promise<void> {
  validateDatabaseName(from);
  validateDatabaseName(to);
  const maintenance = options.maintenanceDatabase ?? 'postgres';
  if (from === to) throw new Error(`cannot rename database "${from}" to itself`);
  if (from === maintenance || to === maintenance) {
    throw new Error(`cannot rename the maintenance database "${maintenance}"; pass another maintenanceDatabase`);
  }
  const attempts = Math.max(1, options.attempts ?? 5);
  await withAdmin(config, password, options, async (client) => {
    if (!(await exists(client, from))) {
      throw new DatabaseStateError('VPB_ERR_PG_DATABASE_MISSING', `cannot rename database "${from}": it does not exist`);
    }
    if (await exists(client, to)) {
      throw new DatabaseStateError('VPB_ERR_PG_DATABASE_EXISTS', `cannot rename database "${from}" to "${to}": "${to}" already exists`);
    }
    for (let attempt = 1; ; attempt += 1) {
      await terminateBackends(client, from);
      try {
        await client.query(`ALTER DATABASE ${pg.escapeIdentifier(from)} RENAME TO ${pg.escapeIdentifier(to)}`);
        return;
      } catch (err) {
        if (sqlState(err) !== '55006') throw err;
        if (attempt >= attempts) throw busyError(from, 'rename');
        // Terminated backends take a moment to leave pg_stat_activity; reconnecting clients need a new kick.
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Restoring

export interface RestoreOptions {
  config: PostgresConfig;
  password: string | undefined;
  /** The EXISTING, EMPTY database to restore into (see `createDatabase`). */
  database: string;
  /** The decrypted custom-format archive. Give exactly one of `stream` and `file`. */
  stream?: Readable;
  /** A custom-format archive on disk: seekable, so `jobs` > 1 is allowed. */
  file?: string;
  /** Kills pg_restore; the target database then holds a partial restore and should be dropped. */
  signal?: AbortSignal;
  /** Parallel pg_restore workers; only with `file` (pg_restore cannot seek in a pipe). @default 1 */
  jobs?: number;
  /** Refuse a target database that already holds relations: a restore on top of data mixes two states. @default true */
  requireEmpty?: boolean;
  /**
   * Progress until pg_restore exits: on every chunk fed, and every second while it works in silence (building
   * indexes and constraints once its input has ended, or a restore from a file), so an activity can heartbeat.
   */
  onProgress?: (progress: ToolProgress) => void;
  /** Path of pg_restore; default: `findPgTool('pg_restore', config)`. */
  pgRestore?: string;
  /** Restore only these sections (`--section`); a split restore runs pre-data, data, post-data in turn. @default all */
  sections?: readonly RestoreSection[];
  /**
   * Restore only these entries: lines of `pg_restore --list` (`-L`), handed to pg_restore through a pipe. Lets
   * several pg_restores share one section (e.g. the index builds of post-data).
   */
  entries?: readonly string[];
  /**
   * Read `stream` to its end after pg_restore exited, so upstream stages (decryption, checksum) see every byte.
   * A pass that needs only the table of contents (pre-data, post-data) passes false: the rest is not downloaded.
   * @default true
   */
  readToEnd?: boolean;
}

export type RestoreSection = 'pre-data' | 'data' | 'post-data';

export interface RestoreResult {
  exitCode: 0;
  /** Bytes read from `stream` (0 with `file`). */
  bytes: number;
  durationMs: number;
  /** pg_restore's stderr on success (warnings), password scrubbed; usually empty. */
  warnings: string;
}

export async function assertDatabaseEmpty(config: PostgresConfig, password: string | undefined, database: string): Promise<void> {
  const relations = await withClient(
    config,
    password,
    async (client) => {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`,
      );
      return Number(rows[0]?.n ?? 0);
    },
    { database, applicationName: 'vaultpam-backup restore' },
  );
  if (relations > 0) {
    throw new DatabaseStateError(
      'VPB_ERR_PG_DATABASE_NOT_EMPTY',
      `database "${database}" already holds ${relations} relations; restore into a new database made with createDatabase()`,
    );
  }
}

/**
 * `pg_restore --no-owner --no-privileges --exit-on-error -d <database>` from a stream (stdin) or a file.
 * Ownership and grants are left out on purpose: the restored objects belong to the restoring role, which is
 * the same role the control plane connects as, and a role missing on this server would fail the restore.
 */
export async function restoreDump(options: RestoreOptions): Promise<RestoreResult> {
  const { config, password, database, stream, file } = options;
  validateDatabaseName(database);
  if ((stream === undefined) === (file === undefined)) throw new Error('restoreDump: give exactly one of stream and file');
  const jobs = options.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`restoreDump: jobs must be a positive integer, got ${jobs}`);
  if (jobs > 1 && file === undefined) {
    throw new Error('restoreDump: parallel restore (jobs > 1) needs a seekable archive; pass file instead of stream, or jobs: 1');
  }
  const bin = options.pgRestore ?? findPgTool('pg_restore', config);
  if (options.requireEmpty ?? true) await assertDatabaseEmpty(config, password, database);

  const args = ['--no-owner', '--no-privileges', '--exit-on-error'];
  for (const section of options.sections ?? []) args.push(`--section=${section}`);

  if (jobs > 1) args.push(`--jobs=${jobs}`);
  args.push(...libpqArguments(config, database));
  // Absolute, so a relative name starting with "-" can never read as an option.
  if (file !== undefined) args.push(resolvePath(file));

  if (options.entries) {
    return withListPipe(options.entries, (list) => runRestore(options, [...args, `--use-list=${list}`], bin));
  }
  return runRestore(options, args, bin);
}

/**
 * A pg_restore `-L` list handed over through a named pipe in a private directory: pg_restore reads it like a file,
 * and nothing of it is ever stored on disk.
 */
async function withListPipe<T>(entries: readonly string[], fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'vaultpam-list-'));
  try {
    const fifo = join(dir, 'entries.list');
    const made = spawnSync('mkfifo', ['-m', '600', fifo], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`mkfifo ${fifo} failed: ${made.error?.message ?? made.stderr}`);
    let written = false;
    // Opening a pipe for writing waits for its reader: pg_restore, once it has read the archive's table of contents.
    const writing = writeFile(fifo, `${entries.join('\n')}\n`).finally(() => (written = true));
    writing.catch(() => undefined);
    try {
      return await fn(fifo);
    } finally {
      if (!written) {
        // pg_restore ended without reading the whole list: read it here, so the writer is never left waiting.
        const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
        const buffer = Buffer.alloc(64 * 1024);
        while (!written) {
          const { bytesRead } = await reader.read(buffer, 0, buffer.length, null).catch(() => ({ bytesRead: 0 }));
          if (bytesRead === 0) await new Promise((r) => setTimeout(r, 10));
        }
        await reader.close();
      }
      await writing.catch(() => undefined);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runRestore(options: RestoreOptions, args: string[], bin: string): Promise<RestoreResult> {
  const { config, database, stream, password, signal } = options;
  const started = performance.now();
  const tool = spawnPgTool({
    tool: 'pg_restore',
    bin,
    args,
    password,
    stdin: stream ? 'pipe' : 'ignore',
    stdout: 'ignore',
    ...(signal ? { signal } : {}),
  });
  // From a stream, pg_restore loads each table's data as it arrives and builds indexes and constraints after the
  // last byte: that phase reads nothing, and can outlast the data load many times over on a large database.
  const progress = startProgress(options.onProgress, stream ? 'pg_restore: loading data' : 'pg_restore');
  let feed: StdinFeed | undefined;
  let sourceError: unknown;
  if (stream) {
    if (!tool.child.stdin) {
      progress.stop();
      throw new Error('pg_restore was spawned without a stdin pipe');
    }
    feed = feedStdin(stream, tool.child.stdin, (bytes) => progress.bytes(bytes));
    feed.ended.then(
      () => progress.phase('pg_restore: building indexes'),
      (err: unknown) => {
        sourceError = err;
        tool.child.kill('SIGTERM');
      },
    );
  }

  const exit = await tool.exit.finally(() => progress.stop());
  if (exit.aborted) {
    stream?.destroy();
    throw new PgToolAbortedError('pg_restore');
  }
  if (sourceError) throw sourceError;
  if (exit.code !== 0) {
    stream?.destroy();
    const message = `pg_restore into database "${database}" at ${config.host}:${config.port} failed: ${describeExit('pg_restore', exit)}${exit.stderrTail ? `\n${exit.stderrTail}` : ''}`;
    throw new RestoreFailedError(message, exit.code, exit.stderrTail);
  }
  if (feed && (options.readToEnd ?? true)) {
    // pg_restore has all it needs; anything left (normally nothing) is read so upstream stages can finish.
    feed.stopWriting();
    await feed.ended;
  } else if (feed) {
    stream?.destroy();
  }
  return { exitCode: 0, bytes: feed?.bytes() ?? 0, durationMs: performance.now() - started, warnings: exit.stderrTail };
}

// ---------------------------------------------------------------------------------------------------------------
// Comparing databases

/** Exact row counts of the named tables ("schema.table" or "table" for public) in `database`. */
export function tableRowCounts(config: PostgresConfig, password: string | undefined, database: string, tables: readonly string[], onProgress?: TableProgress): Promise<Record<string, number>> {
  return withClient(config, password, (client) => countRows(client, tables, onProgress), { database });
}

/**
 * An order-independent content digest of each named table in `database`: equal digests before and after a
 * rolled-back restore prove the database was left exactly as it was.
 */
export function tableChecksums(config: PostgresConfig, password: string | undefined, database: string, tables: readonly string[], onProgress?: TableProgress): Promise<Record<string, string>> {
  return withClient(config, password, (client) => checksumRows(client, tables, onProgress), { database });
}
