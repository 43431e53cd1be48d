// The bucket listed in key order, several prefixes at once: the same keys in the same order as one recursive listing,
// whatever the layout, with the prefixes' listings really overlapping and every listing closed when the reader stops.
import { describe, expect, it } from 'vitest';
import { listInKeyOrder, type ListingClient } from '../../src/storage/ordered-listing';
import { compareKeys } from '../../src/streams/sorted-cursor';

/**
 * An in-memory bucket with S3's listing semantics as minio's client yields them: recursive listings in key order;
 * with the delimiter, each page's objects first and then its common prefixes (not interleaved by key).
 */
class PagedBucket implements ListingClient {
  readonly keys: string[];
  open = 0;
  maxOpenRecursive = 0;
  openRecursive = 0;
  constructor(keys: string[], private readonly pageSize = 3) {
    this.keys = [...keys].sort(compareKeys);
  }

  listObjectsV2(_bucket: string, prefix = '', recursive = false): AsyncIterable<unknown> {
    const under = this.keys.filter((k) => k.startsWith(prefix));
    const entries: { key: string; object: boolean }[] = [];
    if (recursive) for (const key of under) entries.push({ key, object: true });
    else {
      for (const key of under) {
        const slash = key.indexOf('/', prefix.length);
        const entry = slash < 0 ? { key, object: true } : { key: key.slice(0, slash + 1), object: false };
        if (!entries.some((e) => e.key === entry.key)) entries.push(entry);
      }
    }
    const pages = this.pages(entries, recursive);
    return { [Symbol.asyncIterator]: () => pages };
  }

  private async *pages(entries: { key: string; object: boolean }[], recursive: boolean): AsyncGenerator<unknown> {
    this.open += 1;
    if (recursive) this.maxOpenRecursive = Math.max(this.maxOpenRecursive, ++this.openRecursive);
    try {
      for (let i = 0; i < entries.length; i += this.pageSize) {
        // A round trip per page: the listings of several prefixes can overlap only if they are started together.
        await new Promise((resolve) => setTimeout(resolve, 2));
        const page = entries.slice(i, i + this.pageSize);
        for (const e of page.filter((p) => p.object)) yield { name: e.key, size: e.key.length, etag: `"${e.key.length}"` };
        for (const e of page.filter((p) => !p.object)) yield { prefix: e.key, size: 0 };
      }
    } finally {
      this.open -= 1;
      if (recursive) this.openRecursive -= 1;
    }
  }
}

async function names(iterable: AsyncIterable<{ name: string }>): Promise<string[]> {
  const out: string[] = [];
  for await (const item of iterable) out.push(item.name);
  return out;
}

const dated = Array.from({ length: 40 }, (_, i) => `sessions/2026/${String(1 + (i % 3)).padStart(2, '0')}/${String(1 + (i % 7)).padStart(2, '0')}/rec-${i}.cast`);
// Keys beside prefixes that sort just before or after '/', loose objects at every level, and an empty-named level.
const awkward = ['a', 'a.b', 'a-x', 'a/1', 'a/2/x', 'a/2/y', 'a0', 'b/', 'b//c', 'sessions/2026/01.cast', 'sessions/2026/01/notes', 'sessions/z', 'zz', 'é/1', 'ö'];

describe('listInKeyOrder', () => {
  it('yields every key once, in key order, for nested, loose and awkward keys', async () => {
    const bucket = new PagedBucket([...dated, ...awkward]);
    const listed = await names(listInKeyOrder(bucket, 'b', { concurrency: 3, depth: 4, maxLevelEntries: 50, readAhead: 2 }));
    expect(listed).toEqual(bucket.keys);
    expect(bucket.open).toBe(0);
  });

  it('lists a level too wide to sort as one flat listing, still in order', async () => {
    const flat = Array.from({ length: 30 }, (_, i) => `flat/${String(i).padStart(3, '0')}`);
    const bucket = new PagedBucket([...flat, ...dated]);
    const listed = await names(listInKeyOrder(bucket, 'b', { concurrency: 2, depth: 4, maxLevelEntries: 5, readAhead: 4 }));
    expect(listed).toEqual(bucket.keys);
  });

  it('runs the listings of several prefixes at once, never more than its concurrency', async () => {
    const bucket = new PagedBucket(dated, 2);
    await names(listInKeyOrder(bucket, 'b', { concurrency: 3, depth: 4, readAhead: 100 }));
    expect(bucket.maxOpenRecursive).toBeGreaterThan(1);
    expect(bucket.maxOpenRecursive).toBeLessThanOrEqual(3);
  });

  it('closes every listing when the reader stops early', async () => {
    // Days of 8 recordings, read 2 ahead: the reader stops inside the first day, with the next days' listings waiting.
    const days = Array.from({ length: 40 }, (_, i) => `sessions/2026/01/${String(1 + Math.floor(i / 8)).padStart(2, '0')}/rec-${i}.cast`);
    const bucket = new PagedBucket(days, 2);
    const seen: string[] = [];
    for await (const item of listInKeyOrder(bucket, 'b', { concurrency: 4, depth: 4, readAhead: 2 })) {
      seen.push(item.name);
      if (seen.length === 5) break;
    }
    expect(seen).toEqual(bucket.keys.slice(0, 5));
    // The read-ahead of listings started in the background settles after the reader left.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(bucket.open).toBe(0);
  });

  it('passes a listing failure to the reader', async () => {
    const bucket = new PagedBucket(dated);
    const failing: ListingClient = {
      listObjectsV2: (b, prefix, recursive) => {
        if (recursive && prefix === 'sessions/2026/02/03/') {
          return {
            async *[Symbol.asyncIterator]() {
              yield* [];
              throw new Error('connection reset while listing');
            },
          };
        }
        return bucket.listObjectsV2(b, prefix, recursive);
      },
    };
    await expect(names(listInKeyOrder(failing, 'b', { concurrency: 2, depth: 4 }))).rejects.toThrow('connection reset while listing');
  });
});
