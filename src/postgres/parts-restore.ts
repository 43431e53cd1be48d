// Restoring a dump split into parts: the schema, then every table's rows with pg_restore processes in parallel, then
// indexes and constraints; each pass reads its archive from a stream, so nothing of the dump touches disk.
import type { Readable } from 'node:stream';
import type { PostgresConfig } from '../config/schema';
import { assertDatabaseEmpty, listSectionEntries, postDataDependencies, restoreDump, tableOfEntry, tocEntry, validateDatabaseName, type RestoreResult, type RestoreSection } from './restore';
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
  /** Data-only archives of one table each, largest first; their `label` is the table's "schema.table". */
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
  /** Milliseconds of each pass: the schema, the rows (with the indexes of table parts), the remaining post-data. */
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

  const pass = async (source: ArchiveSource, sections: RestoreSection[], phase: string, readToEnd: boolean, entries?: string[], label = source.label): Promise<RestoreResult> => {
    running.set(label, 0);
    const result = await restoreDump({
      config,
      password,
      database,
      stream: await source.open(),
      sections,
      readToEnd,
      requireEmpty: false,
      signal: stopAll.signal,
      ...(entries ? { entries } : {}),
      ...(options.pgRestore ? { pgRestore: options.pgRestore } : {}),
      onProgress: (progress) => {
        running.set(label, progress.bytes);
        report({ ...progress, phase: `${phase}${progress.phase.endsWith('building indexes') && sections.includes('data') ? ' (committing)' : ''}` });
      },
    });
    running.delete(label);
    doneBytes += result.bytes;
    return result;
  };

  try {
    const t0 = performance.now();
    await pass(options.main, ['pre-data'], 'pg_restore: schema', false);
    const t1 = performance.now();
    // Indexes and table constraints do not depend on one another: those of a table part are built right after its
    // rows are in (while other parts still load, as pg_restore -j does), the others side by side once every row is
    // in; foreign keys, which need the unique indexes, then triggers, rules and attachments come last, in one.
    const textOptions = { config, ...(options.pgRestore ? { pgRestore: options.pgRestore } : {}), signal: stopAll.signal };
    const tableById = new Map<number, string>();
    for (const line of await listSectionEntries(await options.main.open(), 'all', textOptions)) {
      const table = tableOfEntry(line);
      if (table) tableById.set(tocEntry(line)!.id, table);
    }
    const dependencies = await postDataDependencies(await options.main.open(), textOptions);
    const partTables = new Set(options.parts.map((part) => part.label));
    const afterPart = new Map<string, string[]>();
    const independent: string[] = [];
    const dependent: string[] = [];
    for (const line of await listSectionEntries(await options.main.open(), 'post-data', textOptions)) {
      const entry = tocEntry(line)!;
      const standalone = entry.rest.startsWith('CONSTRAINT ') || (entry.rest.startsWith('INDEX ') && !entry.rest.startsWith('INDEX ATTACH '));
      if (!standalone) {
        dependent.push(line);
        continue;
      }
      const tables = [...new Set((dependencies.get(entry.id) ?? []).map((id) => tableById.get(id)).filter((t): t is string => t !== undefined))];
      if (tables.length === 1 && partTables.has(tables[0]!)) afterPart.set(tables[0]!, [...(afterPart.get(tables[0]!) ?? []), line]);
      else independent.push(line);
    }

    const loading = `pg_restore: loading rows (${options.parts.length + 1} archives)`;
    // Each index or constraint of a part is a task of its own, queued first once the part's rows are in: as with
    // pg_restore -j, a process that finishes early takes the next index rather than waiting for a whole table.
    await runQueue(
      [
        async () => {
          await pass(options.main, ['data'], loading, true);
        },
        ...options.parts.map((part) => async () => {
          await pass(part, ['data'], loading, true);
          return (afterPart.get(part.label) ?? []).map((entry, i) => async () => {
            await pass(options.main, ['post-data'], 'pg_restore: indexes and constraints', false, [entry], `index ${i + 1} of ${part.label}`);
          });
        }),
      ],
      jobs,
      () => stopAll.abort(),
    );
    const t2 = performance.now();
    const lanes = Array.from({ length: Math.min(jobs, independent.length) }, (_, lane) => independent.filter((_line, i) => i % jobs === lane));
    await inParallel(
      lanes.map((entries, lane) => () => pass(options.main, ['post-data'], 'pg_restore: indexes and constraints', false, entries, `indexes ${lane + 1}/${lanes.length}`)),
      jobs,
      () => stopAll.abort(),
    );
    if (dependent.length) await pass(options.main, ['post-data'], 'pg_restore: foreign keys and triggers', false, dependent, 'foreign keys and triggers');
    const t3 = performance.now();
    return { bytes: doneBytes, durationMs: t3 - started, passes: { preData: t1 - t0, data: t2 - t1, postData: t3 - t2 } };
  } finally {
    signal?.removeEventListener('abort', onCancel);
  }
}

/** Runs the tasks, at most `limit` at a time; the first failure stops new starts, calls `onFailure`, and is thrown once all ended. */
async function inParallel(tasks: readonly (() => Promise<unknown>)[], limit: number, onFailure: () => void): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (!failure && next < tasks.length) {
      const task = tasks[next++]!;
      try {
        await task();
      } catch (error) {
        if (!failure) {
          failure = { error };
          onFailure();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, lane));
  if (failure) throw failure.error;
}

type QueuedTask = () => Promise<QueuedTask[] | void>;

/**
 * Runs the tasks `limit` at a time; the tasks a finished task returns go to the front of the queue. The first
 * failure stops new starts, calls `onFailure`, and is thrown once the running tasks ended.
 */
function runQueue(initial: readonly QueuedTask[], limit: number, onFailure: () => void): Promise<void> {
  const queue = [...initial];
  let active = 0;
  let failure: { error: unknown } | undefined;
  return new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      if (failure) {
        if (active === 0) reject(failure.error);
        return;
      }
      if (queue.length === 0 && active === 0) {
        resolve();
        return;
      }
      while (active < limit && queue.length > 0) {
        const task = queue.shift()!;
        active += 1;
        task()
          .then(
            (more) => {
              if (more?.length) queue.unshift(...more);
            },
            (error: unknown) => {
              if (!failure) {
                failure = { error };
                onFailure();
              }
            },
          )
          .finally(() => {
            active -= 1;
            pump();
          });
      }
    };
    pump();
  });
}
