// A bucket listed in key order with several prefixes read at once: the recordings bucket's pages come one after
// another from one listing, so at a million keys its 1000 round trips in a row are most of an incremental backup.
import { compareKeys } from '../streams/sorted-cursor';

/** The one call of an S3 client this needs (minio's `listObjectsV2`: objects, and common prefixes when not recursive). */
export interface ListingClient {
  listObjectsV2(bucket: string, prefix?: string, recursive?: boolean): AsyncIterable<unknown>;
}

export interface ListedObject {
  name: string;
  size: number;
  etag: string;
  lastModified?: Date;
}

export interface OrderedListingOptions {
  /** Prefixes whose listings run at once, ahead of the one being read. @default 4 */
  concurrency?: number;
  /** Levels of `/` split into prefixes (sessions/<yyyy>/<mm>/<dd>/ is 4). @default 4 */
  depth?: number;
  /**
   * Entries of one level held to put its objects and prefixes in key order (S3 returns a page's objects before its
   * prefixes); a level with more is listed flat instead, in one listing. @default 10000
   */
  maxLevelEntries?: number;
  /** Objects each prefix's listing reads ahead of the reader. @default 2000 */
  readAhead?: number;
}

type LevelEntry = { name: string; size?: number; etag?: string; lastModified?: Date } | { prefix: string };
type Unit = { object: ListedObject } | { leaf: string };

/** An async iterable read ahead in the background, at most `limit` items, so its requests overlap the reader's work. */
class ReadAhead<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private ended = false;
  private failure: { error: unknown } | undefined;
  private closed = false;
  private wakeReader: (() => void) | undefined;
  private wakePump: (() => void) | undefined;

  constructor(source: AsyncIterable<T>, private readonly limit: number) {
    void this.pump(source[Symbol.asyncIterator]());
  }

  private get buffered(): number {
    return this.items.length - this.head;
  }

  private async pump(iterator: AsyncIterator<T>): Promise<void> {
    try {
      for (;;) {
        while (this.buffered >= this.limit && !this.closed) await new Promise<void>((resolve) => (this.wakePump = resolve));
        if (this.closed) {
          await iterator.return?.();
          return;
        }
        const next = await iterator.next();
        if (next.done) return;
        this.items.push(next.value);
        this.wakeReader?.();
      }
    } catch (error) {
      this.failure = { error };
    } finally {
      this.ended = true;
      this.wakeReader?.();
    }
  }

  /** Stops the background reading (the reader left early); what was read is dropped. */
  close(): void {
    this.closed = true;
    this.items = [];
    this.head = 0;
    this.wakePump?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.buffered > 0) {
        const item = this.items[this.head++]!;
        if (this.head >= 1024) {
          this.items = this.items.slice(this.head);
          this.head = 0;
        }
        this.wakePump?.();
        yield item;
        continue;
      }
      if (this.failure) throw this.failure.error;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wakeReader = resolve));
      this.wakeReader = undefined;
    }
  }
}

function asListed(item: { name: string; size?: number; etag?: string; lastModified?: Date }): ListedObject {
  return { name: item.name, size: item.size ?? 0, etag: (item.etag ?? '').replace(/"/g, ''), ...(item.lastModified ? { lastModified: item.lastModified } : {}) };
}

/** The objects and leaf prefixes under `prefix`, in key order: levels above `depth` are listed with `/` and sorted. */
async function* units(client: ListingClient, bucket: string, prefix: string, level: number, o: Required<OrderedListingOptions>): AsyncGenerator<Unit> {
  if (level >= o.depth) {
    yield { leaf: prefix };
    return;
  }
  const entries: LevelEntry[] = [];
  for await (const raw of client.listObjectsV2(bucket, prefix, false)) {
    const item = raw as { name?: string; prefix?: string; size?: number; etag?: string; lastModified?: Date };
    if (item.prefix !== undefined) entries.push({ prefix: item.prefix });
    else if (item.name !== undefined) entries.push(item as LevelEntry);
    if (entries.length > o.maxLevelEntries) {
      // A flat level (many objects side by side): one listing of all of it, in the server's own order.
      yield { leaf: prefix };
      return;
    }
  }
  const keyOf = (e: LevelEntry) => ('prefix' in e ? e.prefix : e.name);
  // A prefix sorts where its keys do: a key beside it either precedes it or follows every key under it.
  entries.sort((a, b) => compareKeys(keyOf(a), keyOf(b)));
  for (const entry of entries) {
    if ('prefix' in entry) yield* units(client, bucket, entry.prefix, level + 1, o);
    else yield { object: asListed(entry) };
  }
}

/**
 * Every object of `bucket` in key order (UTF-8 bytes, as S3 lists), like one recursive listing, but with the listings
 * of up to `concurrency` prefixes running at once ahead of the reader. Memory: a level's entries while it is sorted,
 * and `readAhead` objects per prefix in flight, whatever the number of objects.
 */
export async function* listInKeyOrder(client: ListingClient, bucket: string, options: OrderedListingOptions = {}): AsyncGenerator<ListedObject> {
  const o: Required<OrderedListingOptions> = { concurrency: 4, depth: 4, maxLevelEntries: 10_000, readAhead: 2000, ...options };
  const queue: ({ object: ListedObject } | { leaf: ReadAhead<unknown> })[] = [];
  let leaves = 0;
  async function* takeHead(): AsyncGenerator<ListedObject> {
    const head = queue.shift()!;
    if ('object' in head) {
      yield head.object;
      return;
    }
    leaves -= 1;
    try {
      for await (const raw of head.leaf) {
        const item = raw as { name?: string; size?: number; etag?: string; lastModified?: Date };
        if (item.name !== undefined) yield asListed(item as { name: string });
      }
    } finally {
      head.leaf.close();
    }
  }
  try {
    for await (const unit of units(client, bucket, '', 0, o)) {
      if ('leaf' in unit) {
        queue.push({ leaf: new ReadAhead(client.listObjectsV2(bucket, unit.leaf, true), o.readAhead) });
        leaves += 1;
      } else queue.push(unit);
      // Objects between prefixes wait here only while a prefix ahead of them is still being read.
      while (leaves >= o.concurrency || queue.length > o.readAhead) yield* takeHead();
    }
    while (queue.length > 0) yield* takeHead();
  } finally {
    for (const pending of queue) if ('leaf' in pending) pending.leaf.close();
  }
}
