// Restoring a dump split into parts: the schema, then every table's rows with pg_restore processes in parallel, then
// indexes and constraints; each pass reads its archive from a stream, so nothing of the dump touches disk.
import type { Readable } from 'node:stream';
import type { PostgresConfig } from '../config/schema';
import { assertDatabaseEmpty, restoreDump, validateDatabaseName, type RestoreResult, type RestoreSection } from './restore';
import type { ToolProgress } from './tool-process';

export interface ArchiveSource {
  /** What the archive holds, for progress and errors: "main archive" or a table name. */
  label: string;
  /** Opens a new stream of the decrypted archive: the main archive is read once per pass. */
  open(): Promise<Readable>;
}

export interface PartsRestoreOptions {
  config: PostgresConfig;
  password: string | undefined;
  /** The EXISTING, EMPTY database to restore into. */
  database: string;
  /** The schema and the small tables' rows (and sequences, large objects). */
  main: ArchiveSource;
  /** Data-only archives of one table each, largest first. */
  parts: readonly ArchiveSource[];
  /** pg_restore processes loading rows at once. @default 2 */
  jobs?: number;
  signal?: AbortSignal;
  /** Progress throughout, silent phases included (index builds): drives an activity's heartbeat. */
  onProgress?: (progress: ToolProgress & { running: string[] }) => void;
  pgRestore?: string;
}

export interface PartsRestoreResult {
  /** Decrypted bytes fed to pg_restore over all passes. */
  bytes: number;
  durationMs: number;
  /** Milliseconds of each pass. */
  passes: { preData: number; data: number; postData: number };
}

/**
 * Restores a split dump: `--section=pre-data` of the main archive (tables without indexes or constraints), then the
 * main archive's `--section=data` and every part's rows, `jobs` pg_restore processes at a time, then the main
 * archive's `--section=post-data`. Loading rows before indexes and constraints exist is also what makes pg_restore
 * fast: nothing is checked or indexed row by row. The first failure stops the other processes.
 */
export async function restoreParts(options: PartsRestoreOptions): Promise<PartsRestoreResult> {
  const { config, password, database, signal } = options;
  validateDatabaseName(database);
  const jobs = options.jobs ?? 2;
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`restoreParts: jobs must be a positive integer, got ${jobs}`);
  await assertDatabaseEmpty(config, password, database);

  const started = performance.now();
  const running = new Map<string, number>();
  let doneBytes = 0;
  const report = (progress: ToolProgress) => {
    const bytes = doneBytes + [...running.values()].reduce((a, b) => a + b, 0);
    options.onProgress?.({ ...progress, bytes, elapsedSeconds: Math.round((performance.now() - started) / 100) / 10, running: [...running.keys()] });
  };
  const stopAll = new AbortController();
  const onCancel = () => stopAll.abort();
  signal?.addEventListener('abort', onCancel, { once: true });

  const pass = async (source: ArchiveSource, sections: RestoreSection[], phase: string, readToEnd: boolean): Promise<RestoreResult> => {
    running.set(source.label, 0);
    const result = await restoreDump({
      config,
      password,
      database,
      stream: await source.open(),
      sections,
      readToEnd,
      requireEmpty: false,
      signal: stopAll.signal,
      ...(options.pgRestore ? { pgRestore: options.pgRestore } : {}),
      onProgress: (progress) => {
        running.set(source.label, progress.bytes);
        report({ ...progress, phase: `${phase}${progress.phase.endsWith('building indexes') && sections.includes('data') ? ' (committing)' : ''}` });
      },
    });
    running.delete(source.label);
    doneBytes += result.bytes;
    return result;
  };

  try {
    const t0 = performance.now();
    await pass(options.main, ['pre-data'], 'pg_restore: schema', false);
    const t1 = performance.now();
    const loads: { source: ArchiveSource; sections: RestoreSection[] }[] = [
      { source: options.main, sections: ['data'] },
      ...options.parts.map((source) => ({ source, sections: ['data'] as RestoreSection[] })),
    ];
    let next = 0;
    let failure: { error: unknown } | undefined;
    const lane = async () => {
      while (!failure && next < loads.length) {
        const load = loads[next++]!;
        try {
          await pass(load.source, load.sections, `pg_restore: loading rows (${loads.length} archives)`, true);
        } catch (error) {
          if (!failure) {
            failure = { error };
            stopAll.abort();
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(jobs, loads.length) }, lane));
    if (failure) throw failure.error;
    const t2 = performance.now();
    await pass(options.main, ['post-data'], 'pg_restore: indexes and constraints', false);
    const t3 = performance.now();
    return { bytes: doneBytes, durationMs: t3 - started, passes: { preData: t1 - t0, data: t2 - t1, postData: t3 - t2 } };
  } finally {
    signal?.removeEventListener('abort', onCancel);
  }
}
