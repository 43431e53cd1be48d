// Sorting more strings than memory should hold: sorted runs written to temporary files, then merged (k-way).
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { compareKeys } from './sorted-cursor';

export interface ExternalSortOptions {
  /** Directory for the temporary run files (removed when the iteration ends, however it ends). */
  workDir: string;
  /**
   * Strings held in memory at once; each full batch becomes one sorted run on disk.
   * @default 200000
   */
  runSize?: number;
  /** Called every few thousand strings while runs are merged and written, so a caller can heartbeat. */
  onProgress?: (merged: number) => void;
}

async function writeRun(path: string, lines: string[]): Promise<void> {
  const out = createWriteStream(path);
  for (const line of lines) {
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/**
 * Every distinct string of `source`, in S3 key order (UTF-8 bytes), once. Memory holds one run plus one line per
 * run; the strings must not contain a newline.
 */
export async function* sortedUnique(source: AsyncIterable<string>, options: ExternalSortOptions): AsyncGenerator<string> {
  const runSize = options.runSize ?? 200_000;
  await mkdir(options.workDir, { recursive: true });
  const dir = await mkdtemp(join(options.workDir, 'vaultpam-sort-'));
  try {
    const runs: string[] = [];
    let batch: string[] = [];
    const flush = async () => {
      batch.sort(compareKeys);
      const path = join(dir, `run-${runs.length}`);
      await writeRun(path, batch);
      runs.push(path);
      batch = [];
    };
    for await (const item of source) {
      if (item.includes('\n')) throw new TypeError('sortedUnique sorts single-line strings only');
      batch.push(item);
      if (batch.length >= runSize) await flush();
    }
    if (runs.length === 0) {
      // Everything fitted in one run: no file needed.
      batch.sort(compareKeys);
      let last: string | undefined;
      for (const item of batch) {
        if (item !== last) yield item;
        last = item;
      }
      return;
    }
    if (batch.length) await flush();
    const readers = runs.map((path) => createInterface({ input: createReadStream(path), crlfDelay: Infinity })[Symbol.asyncIterator]());
    const heads: (string | undefined)[] = await Promise.all(readers.map(async (r) => ((await r.next()).value as string | undefined) ?? undefined));
    let last: string | undefined;
    let merged = 0;
    for (;;) {
      let min = -1;
      for (let i = 0; i < heads.length; i++) {
        if (heads[i] !== undefined && (min < 0 || compareKeys(heads[i]!, heads[min]!) < 0)) min = i;
      }
      if (min < 0) break;
      const item = heads[min]!;
      const next = await readers[min]!.next();
      heads[min] = next.done ? undefined : (next.value as string);
      if (++merged % 5000 === 0) options.onProgress?.(merged);
      if (item !== last) yield item;
      last = item;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A sorted, de-duplicated list of strings kept in a temporary file, to be merged against as often as needed. */
export interface SortedFile {
  count: number;
  lines(): AsyncGenerator<string>;
  dispose(): Promise<void>;
}

/** sortedUnique, written once to a file under `workDir` so that several merges can read it. */
export async function sortUniqueToFile(source: AsyncIterable<string>, options: ExternalSortOptions): Promise<SortedFile> {
  await mkdir(options.workDir, { recursive: true });
  const dir = await mkdtemp(join(options.workDir, 'vaultpam-sorted-'));
  const path = join(dir, 'sorted');
  let count = 0;
  try {
    const out = createWriteStream(path);
    for await (const item of sortedUnique(source, options)) {
      count += 1;
      if (count % 5000 === 0) options.onProgress?.(count);
      if (!out.write(`${item}\n`)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    count,
    async *lines() {
      for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
        if (line.length > 0) yield line;
      }
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
