// The dump step's process: pg_dump -Fc as a stream, nothing on disk; the caller encrypts and hashes it in one pass.
import type { ChildProcess } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import type { PostgresConfig } from '../config/schema';
import { assertDumpCompatibility, findPgTool, pgToolVersion } from './binaries';
import { DumpFailedError, PgToolAbortedError } from './postgres-errors';
import { tablePattern } from './table-stats';
import { describeExit, libpqArguments, spawnPgTool, startProgress, type ToolExit, type ToolProgress } from './tool-process';

/** `bytes`: archive produced so far. pg_dump is silent while it locks and reads the catalog of a large schema. */
export type DumpProgress = ToolProgress;

export interface DumpOptions {
  config: PostgresConfig;
  /** Already resolved from the configuration's SecretRef; undefined leaves authentication to libpq's fallbacks. */
  password: string | undefined;
  /** From `openSnapshot`: the dump then reads exactly that snapshot's state. The snapshot must stay open until `done`. */
  snapshotId?: string;
  /** Kills pg_dump; `done` rejects with PgToolAbortedError and the stream errors with it. */
  signal?: AbortSignal;
  /**
   * Called for every chunk pg_dump writes and every second while it writes nothing, until it exits; cheap, so
   * Temporal heartbeats can be driven from it (the SDK throttles).
   */
  onProgress?: (progress: DumpProgress) => void;
  /** Dump this database instead of `config.database` (e.g. the safety snapshot of a staging copy). */
  database?: string;
  /**
   * When given (e.g. `snapshot.serverVersionNum`), pg_dump's version is checked against it before the dump
   * starts, so an old pg_dump fails at once with the package to install rather than after the quiesce.
   */
  serverVersionNum?: number;
  /**
   * pg_dump `--compress` level 0-9 for the custom format's zlib. 0 is fastest when the next stage compresses
   * anyway or the data is already compressed.
   * @default pg_dump's default (zlib level 6-equivalent)
   */
  compressLevel?: number;
  /** Path of pg_dump; default: `findPgTool('pg_dump', config)`. */
  pgDump?: string;
  /**
   * Tables ("schema.table") whose rows stay out of this archive (their definitions stay in): each is dumped by a
   * `table` dump of its own.
   */
  excludeTableData?: readonly string[];
  /** Dump only the rows of this one table ("schema.table"), `--data-only`; it must exist (`--strict-names`). */
  table?: string;
}

export interface DumpResult {
  exitCode: 0;
  /** Size of the archive in bytes. */
  bytes: number;
  durationMs: number;
  /** pg_dump's stderr on success (warnings), password scrubbed; usually empty. */
  warnings: string;
}

export interface DumpHandle {
  /**
   * The custom-format archive. It ends only after pg_dump exited 0; if pg_dump fails it errors instead of
   * ending, so a pipeline that consumes it can never commit a truncated dump as complete.
   */
  stream: Readable;
  done: Promise<DumpResult>;
}

const SNAPSHOT_ID = /^[0-9A-F]+-[0-9A-F]+(-\d+)?$/i;

function dumpFailure(database: string, config: PostgresConfig, exit: ToolExit, reason?: string): DumpFailedError {
  const where = `database "${database}" at ${config.host}:${config.port}`;
  let message = `pg_dump of ${where} failed: ${reason ?? describeExit('pg_dump', exit)}`;
  if (exit.stderrTail) message += `\n${exit.stderrTail}`;
  const mismatch = /server version: (\d+)/.exec(exit.stderrTail);
  if (exit.stderrTail.includes('server version mismatch') && mismatch) {
    message += `\npg_dump must be the server's major version or newer: install postgresql-client-${mismatch[1]} and set deployment.postgres.binDir to its bin directory`;
  }
  return new DumpFailedError(message, exit.code, exit.stderrTail);
}

/**
 * Spawns `pg_dump -Fc --no-password [--snapshot=ID] -h -p -U -d` and exposes its stdout. Returns at once; the
 * caller must consume `stream` (pg_dump blocks when nobody reads) and await `done` before treating the artifact
 * as complete. Destroying `stream` early kills pg_dump. Bad options throw here, before anything runs.
 */
export function dumpDatabase(options: DumpOptions): DumpHandle {
  const { config, password, signal } = options;
  const database = options.database ?? config.database;
  if (options.snapshotId !== undefined && !SNAPSHOT_ID.test(options.snapshotId)) {
    throw new Error(`invalid snapshot id ${JSON.stringify(options.snapshotId)}: pass the value returned by openSnapshot()`);
  }
  if (options.compressLevel !== undefined && !(Number.isInteger(options.compressLevel) && options.compressLevel >= 0 && options.compressLevel <= 9)) {
    throw new Error(`invalid compressLevel ${options.compressLevel}: use an integer from 0 to 9`);
  }
  const bin = options.pgDump ?? findPgTool('pg_dump', config);

  const args = ['--format=custom'];
  if (options.compressLevel !== undefined) args.push(`--compress=${options.compressLevel}`);
  if (options.snapshotId !== undefined) args.push(`--snapshot=${options.snapshotId}`);
  for (const table of options.excludeTableData ?? []) args.push(`--exclude-table-data=${tablePattern(table)}`);
  if (options.table !== undefined) args.push('--data-only', '--strict-names', `--table=${tablePattern(options.table)}`);
  args.push(...libpqArguments(config, database));

  const stream = new PassThrough();
  let child: ChildProcess | undefined;
  let exited = false;
  let outputClosedEarly = false;
  stream.on('close', () => {
    if (exited) return;
    // The consumer gave up (its own error or cancellation): pg_dump would otherwise block on a full pipe forever.
    outputClosedEarly = true;
    child?.kill('SIGTERM');
  });

  const run = async (): Promise<DumpResult> => {
    if (options.serverVersionNum !== undefined) {
      assertDumpCompatibility(options.serverVersionNum, (await pgToolVersion(bin)).major);
    }
    if (outputClosedEarly) throw new Error('the dump stream was closed before pg_dump started');
    const started = performance.now();
    const tool = spawnPgTool({ tool: 'pg_dump', bin, args, password, stdin: 'ignore', stdout: 'pipe', ...(signal ? { signal } : {}) });
    child = tool.child;
    const stdout = tool.child.stdout;
    if (!stdout) throw new Error('pg_dump was spawned without a stdout pipe');
    let bytes = 0;
    const progress = startProgress(options.onProgress, 'pg_dump');
    stdout.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      progress.bytes(bytes);
    });
    // end: false, so the stream ends only once the exit code says the archive is whole.
    stdout.pipe(stream, { end: false });

    const exit = await tool.exit.finally(() => progress.stop());
    exited = true;
    if (exit.aborted) throw new PgToolAbortedError('pg_dump');
    if (exit.code !== 0) {
      throw dumpFailure(database, config, exit, outputClosedEarly ? 'its output stream was closed before the dump finished' : undefined);
    }
    stream.end();
    return { exitCode: 0, bytes, durationMs: performance.now() - started, warnings: exit.stderrTail };
  };

  const done = run();
  done.catch((err: unknown) => {
    exited = true;
    stream.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  return { stream, done };
}
