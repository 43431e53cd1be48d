// The recordings plan of a restore: the backup's index merged with the live listing, both in key order, one line per
// key that changes, written as it is computed (flat memory), with the ETags that make every later step checkable.
import { Readable } from 'node:stream';
import type { IndexEntry } from '../src/catalog/recordings-index';
import { compareKeys } from '../src/streams/sorted-cursor';

/** One key the restore changes. Both halves may be present: the live version moves aside, then the backup's is put. */
export interface PlanEntry {
  key: string;
  /** The live version when the plan was made: it moves to quarantine, and only that version is ever removed. */
  live?: { etag: string; size: number };
  /** The backup's version, put back from a blob; `unrecoverable` when the confirmation accepted its loss. */
  restore?: { etag: string; size: number; blob: string; blobKey: string; unrecoverable?: true };
}

export interface LiveObject {
  key: string;
  etag: string;
  size: number;
}

export interface PlanCounts {
  entries: number;
  unchanged: number;
}

/** Raised when a stream that must be in key order is not: the caller falls back to a plan built in memory. */
export class KeyOrderError extends Error {}

export { compareKeys };

/** Passes items through, throwing KeyOrderError when a key is not strictly after the previous one. */
async function* inKeyOrder<T extends { key: string }>(items: AsyncIterable<T>, what: string): AsyncGenerator<T> {
  let previous: string | undefined;
  for await (const item of items) {
    if (previous !== undefined && compareKeys(previous, item.key) >= 0) throw new KeyOrderError(`${what} is not in key order ("${item.key}" after "${previous}")`);
    previous = item.key;
    yield item;
  }
}

function restoreHalf(entry: IndexEntry, unrecoverable: boolean): NonNullable<PlanEntry['restore']> {
  return { etag: entry.etag, size: entry.size, blob: entry.blob, blobKey: entry.blobKey, ...(unrecoverable ? { unrecoverable: true as const } : {}) };
}

/**
 * The plan as a sorted merge of three sorted streams: the backup's index, the live listing, and the keys accepted as
 * unrecoverable. Memory holds one item of each. Throws KeyOrderError if any stream is out of order.
 */
export async function* mergePlan(
  index: AsyncIterable<IndexEntry>,
  live: AsyncIterable<LiveObject>,
  unrecoverable: AsyncIterable<{ key: string }>,
  counts: PlanCounts,
  onProgress: (seen: number) => void,
): AsyncGenerator<PlanEntry> {
  const wanted = inKeyOrder(index, "the backup's recordings index")[Symbol.asyncIterator]();
  const present = inKeyOrder(live, 'the bucket listing')[Symbol.asyncIterator]();
  const accepted = inKeyOrder(unrecoverable, 'the unrecoverable recordings list')[Symbol.asyncIterator]();
  let w = await wanted.next();
  let p = await present.next();
  let a = await accepted.next();
  let seen = 0;
  const isAccepted = async (key: string): Promise<boolean> => {
    while (!a.done && compareKeys(a.value.key, key) < 0) a = await accepted.next();
    return !a.done && a.value.key === key;
  };
  while (!w.done || !p.done) {
    seen += 1;
    if (seen % 1000 === 0) onProgress(seen);
    const order = w.done ? 1 : p.done ? -1 : compareKeys(w.value.key, p.value.key);
    if (order < 0) {
      const entry = w.value as IndexEntry;
      counts.entries += 1;
      yield { key: entry.key, restore: restoreHalf(entry, await isAccepted(entry.key)) };
      w = await wanted.next();
    } else if (order > 0) {
      const object = p.value as LiveObject;
      counts.entries += 1;
      yield { key: object.key, live: { etag: object.etag, size: object.size } };
      p = await present.next();
    } else {
      const entry = w.value as IndexEntry;
      const object = p.value as LiveObject;
      if (entry.etag === object.etag) counts.unchanged += 1;
      else {
        counts.entries += 1;
        yield { key: entry.key, live: { etag: object.etag, size: object.size }, restore: restoreHalf(entry, await isAccepted(entry.key)) };
      }
      w = await wanted.next();
      p = await present.next();
    }
  }
  onProgress(seen);
}

/**
 * The same plan when a stream is not in key order: the index is held in memory (keys, ETags and blob names), which is
 * correct at any order and costs memory in the number of recordings, so it is the exception, not the way.
 */
export async function* planInMemory(
  index: AsyncIterable<IndexEntry>,
  live: AsyncIterable<LiveObject>,
  unrecoverable: AsyncIterable<{ key: string }>,
  counts: PlanCounts,
  onProgress: (seen: number) => void,
): AsyncGenerator<PlanEntry> {
  const wanted = new Map<string, IndexEntry>();
  for await (const e of index) wanted.set(e.key, e);
  const accepted = new Set<string>();
  for await (const u of unrecoverable) accepted.add(u.key);
  let seen = 0;
  for await (const object of live) {
    if ((seen += 1) % 1000 === 0) onProgress(seen);
    const entry = wanted.get(object.key);
    wanted.delete(object.key);
    if (entry && entry.etag === object.etag) {
      counts.unchanged += 1;
      continue;
    }
    counts.entries += 1;
    yield { key: object.key, live: { etag: object.etag, size: object.size }, ...(entry ? { restore: restoreHalf(entry, accepted.has(entry.key)) } : {}) };
  }
  for (const entry of wanted.values()) {
    counts.entries += 1;
    yield { key: entry.key, restore: restoreHalf(entry, accepted.has(entry.key)) };
  }
}

/** JSON lines of a plan, for writeJournal. */
export function planBody(entries: AsyncIterable<PlanEntry>): Readable {
  return Readable.from(
    (async function* () {
      for await (const e of entries) yield Buffer.from(`${JSON.stringify(e)}\n`);
    })(),
  );
}
