// The recordings plan as a sorted merge: one line per changed key with both ETags, accepted losses marked, and a
// stream out of key order refused (the caller then builds the same plan in memory).
import { describe, expect, it } from 'vitest';
import { KeyOrderError, compareKeys, mergePlan, planInMemory, type LiveObject, type PlanCounts, type PlanEntry } from '../../activities/recordings-plan';
import type { IndexEntry } from '../../src/catalog/recordings-index';

async function* from<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

const wanted = (key: string, etag: string): IndexEntry => ({ key, size: 10, etag, blob: `blob-${key}`, blobKey: 'a2V5' });
const live = (key: string, etag: string): LiveObject => ({ key, etag, size: 11 });

async function collect(gen: AsyncIterable<PlanEntry>): Promise<PlanEntry[]> {
  const out: PlanEntry[] = [];
  for await (const e of gen) out.push(e);
  return out;
}

describe('recordings plan', () => {
  const index = [wanted('a', 'e1'), wanted('b', 'e2'), wanted('d', 'e4'), wanted('e', 'e5')];
  const bucket = [live('a', 'e1'), live('b', 'x2'), live('c', 'x3'), live('e', 'e5')];

  it('merges the index and the listing into one entry per changed key, with the live and the backup ETags', async () => {
    const counts: PlanCounts = { entries: 0, unchanged: 0 };
    const plan = await collect(mergePlan(from(index), from(bucket), from([{ key: 'd' }]), counts, () => undefined));
    expect(plan).toEqual([
      { key: 'b', live: { etag: 'x2', size: 11 }, restore: { etag: 'e2', size: 10, blob: 'blob-b', blobKey: 'a2V5' } },
      { key: 'c', live: { etag: 'x3', size: 11 } },
      { key: 'd', restore: { etag: 'e4', size: 10, blob: 'blob-d', blobKey: 'a2V5', unrecoverable: true } },
    ]);
    expect(counts).toEqual({ entries: 3, unchanged: 2 });
  });

  it('refuses an index out of key order, and the in-memory plan holds the same entries', async () => {
    const shuffled = [index[2]!, index[0]!, index[1]!, index[3]!];
    const counts: PlanCounts = { entries: 0, unchanged: 0 };
    await expect(collect(mergePlan(from(shuffled), from(bucket), from([]), counts, () => undefined))).rejects.toBeInstanceOf(KeyOrderError);
    const fallback: PlanCounts = { entries: 0, unchanged: 0 };
    const inMemory = await collect(planInMemory(from(shuffled), from(bucket), from([{ key: 'd' }]), fallback, () => undefined));
    const sorted = [...inMemory].sort((x, y) => compareKeys(x.key, y.key));
    expect(sorted).toEqual(await collect(mergePlan(from(index), from(bucket), from([{ key: 'd' }]), { entries: 0, unchanged: 0 }, () => undefined)));
    expect(fallback).toEqual({ entries: 3, unchanged: 2 });
  });

  it('orders keys as S3 does, by UTF-8 bytes', () => {
    // U+FF5E sorts before U+1F600 in UTF-8, after it in UTF-16 code units.
    expect(compareKeys('\uff5e', '\u{1f600}')).toBeLessThan(0);
    expect('\uff5e' < '\u{1f600}').toBe(false);
  });
});
