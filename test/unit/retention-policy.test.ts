// The retention selection: regular backups by keepLast/keepDays, safety snapshots by their own days, pins and the
// newest backups always kept; and the pin layout it reads. The point-in-time window over checkpoints and their ids.
import { describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/catalog/catalog';
import { makePin } from '../../src/catalog/pins';
import { retainedNeighbours, selectExpired } from '../../src/catalog/retention';
import { CHECKPOINT_KIND, type CheckpointManifest } from '../../src/catalog/checkpoint-manifest';
import { pointIdTime, selectExpiredPoints } from '../../src/catalog/point-in-time-catalog';
import { checkpointKey, checkpointsPrefix, parsePointInTimeKey, pointInTimeId } from '../../src/storage/layout';
import { parsePinKey, pinKey, restoreJournalKey } from '../../src/storage';

const now = new Date('2026-12-01T12:00:00Z');
const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000).toISOString();

function entry(backupId: string, ageDays: number, tags: string[] = []): CatalogEntry {
  return { backupId, locations: ['primary'], problems: [], manifest: { backupId, startedAt: daysAgo(ageDays), tags } as unknown as CatalogEntry['manifest'] };
}

const ids = (r: { expired: CatalogEntry[] }) => r.expired.map((e) => e.backupId);

describe('retention selection', () => {
  const policy = { keepLast: 2, keepDays: 0, keepSafetySnapshotsDays: 7 };

  it('does not count safety snapshots toward keepLast', () => {
    const catalog = [entry('snap-1', 0.1, ['pre-restore']), entry('snap-2', 0.2, ['pre-restore']), entry('b3', 1), entry('b2', 2), entry('b1', 3)];
    expect(ids(selectExpired(catalog, policy, now, new Set()))).toEqual(['b1']);
  });

  it('keeps backups made from a moment like safety snapshots: outside keepLast, for keepSafetySnapshotsDays', () => {
    const catalog = [entry('moment-new', 0.1, ['point-in-time']), entry('b3', 1), entry('b2', 2), entry('moment-old', 8, ['point-in-time']), entry('b1', 9)];
    expect(ids(selectExpired(catalog, policy, now, new Set()))).toEqual(['moment-old', 'b1']);
  });

  it('expires safety snapshots after keepSafetySnapshotsDays, whatever keepLast says', () => {
    const catalog = [entry('b3', 1), entry('snap-old', 8, ['pre-restore']), entry('snap-new', 6, ['pre-restore']), entry('b2', 9)];
    expect(ids(selectExpired(catalog, { ...policy, keepLast: 5 }, now, new Set()))).toEqual(['snap-old']);
  });

  it('always keeps the newest regular backup and the newest backup of all', () => {
    const catalog = [entry('snap', 30, ['pre-restore']), entry('b1', 40)];
    expect(ids(selectExpired(catalog, { keepLast: 1, keepDays: 0, keepSafetySnapshotsDays: 0 }, now, new Set()))).toEqual([]);
  });

  it('keeps pinned backups and says which', () => {
    const catalog = [entry('b3', 1), entry('b2', 2), entry('b1', 3)];
    const result = selectExpired(catalog, { ...policy, keepLast: 1 }, now, new Set(['b1']));
    expect(ids(result)).toEqual(['b2']);
    expect(result.keptForPins).toEqual(['b1']);
  });

  it('keeps backups younger than keepDays beyond keepLast', () => {
    const catalog = [entry('b3', 1), entry('b2', 2), entry('b1', 40)];
    expect(ids(selectExpired(catalog, { keepLast: 1, keepDays: 30, keepSafetySnapshotsDays: 7 }, now, new Set()))).toEqual(['b1']);
  });
});

describe('the retained backups that can name an expired backup\'s blobs', () => {
  /** `previous`: the backup it built on; `reused`: how many blobs it shares with it. */
  function built(backupId: string, ageDays: number, previous?: string, reused = previous ? 10 : 0): CatalogEntry {
    const e = entry(backupId, ageDays);
    return { ...e, manifest: { ...e.manifest, recordings: { reusedObjects: reused, ...(previous ? { previousBackupId: previous } : {}) } } as CatalogEntry['manifest'] };
  }
  const names = (r: CatalogEntry[] | undefined) => r?.map((e) => e.backupId);

  it('reads only the backup built on the oldest one when the oldest expires', () => {
    const b1 = built('b1', 5);
    const catalog = [built('b5', 1, 'b4'), built('b4', 2, 'b3'), built('b3', 3, 'b2'), built('b2', 4, 'b1'), b1];
    expect(names(retainedNeighbours(catalog, [b1]))).toEqual(['b2']);
  });

  it('reads both sides of an expired run in the middle (a pinned older backup kept)', () => {
    const catalog = [built('b5', 1, 'b4'), built('b4', 2, 'b3'), built('b3', 3, 'b2'), built('b2', 4, 'b1'), built('b1', 5)];
    const expired = [catalog[2]!, catalog[3]!];
    expect(names(retainedNeighbours(catalog, expired))).toEqual(['b4', 'b1']);
  });

  it('also reads a retained backup built on one removed earlier, whatever it shares', () => {
    // b2 was removed earlier (a safety snapshot, say): b3 still names blobs that b1 wrote.
    const b1 = built('b1', 5);
    const catalog = [built('b4', 1, 'b3'), built('b3', 3, 'b2'), b1];
    expect(names(retainedNeighbours(catalog, [b1]))).toEqual(['b3']);
  });

  it('cannot tell when an expired backup built on a removed one has an older backup retained', () => {
    // b1 -> b2 (removed) -> b3 (expiring): b3's blobs may be b1's, and nothing links b1 to b3 any more.
    const b3 = built('b3', 3, 'b2');
    const catalog = [built('b4', 1, 'b3'), b3, built('b1', 5)];
    expect(retainedNeighbours(catalog, [b3])).toBeUndefined();
    // With nothing older retained, the removed link leads nowhere that is kept.
    const newest = [built('b4', 1, 'b3'), b3];
    expect(names(retainedNeighbours(newest, [b3]))).toEqual(['b4']);
  });

  it('cannot tell when a backup shares blobs without naming the one it built on', () => {
    const b1 = built('b1', 5);
    const catalog = [built('b3', 1, 'b2'), built('b2', 3, undefined, 7), b1];
    expect(retainedNeighbours(catalog, [b1])).toBeUndefined();
  });
});

describe('pin and journal layout', () => {
  it('spells out one pin per holder and parses it back', () => {
    const key = pinKey('prod', '20261201T000000Z-abcdef', 'restore-prod');
    expect(key).toBe('prod/pins/20261201T000000Z-abcdef/restore-prod.json');
    expect(parsePinKey('prod', key)).toEqual({ backupId: '20261201T000000Z-abcdef', holderWorkflowId: 'restore-prod' });
    expect(parsePinKey('prod', 'prod/pins/a/b/c.json')).toBeUndefined();
    expect(() => pinKey('prod', 'a/../b', 'x')).toThrow(/backupId/);
    expect(restoreJournalKey('prod', 'restore-prod-1a2b3c4d', 'data-key.json')).toBe('prod/restores/restore-prod-1a2b3c4d/data-key.json');
  });

  it('makes pins that expire after their time to live', () => {
    const pin = makePin({ backupId: 'b1', holder: { workflowId: 'verify-x', runId: 'r' }, operation: 'check', now, ttlMs: 60_000 });
    expect(pin.expiresAt).toBe('2026-12-01T12:01:00.000Z');
    expect(pin.operation).toBe('check');
  });
});

describe('point-in-time window', () => {
  const checkpoint = (id: string, ageDays: number) => ({ id, locations: ['primary'], problems: [], manifest: { checkpointId: id, coveredAt: daysAgo(ageDays) } as unknown as CheckpointManifest });

  it('keeps every checkpoint inside the window, the newest at or before its start, and the newest of all', () => {
    const entries = [checkpoint('c5', 1), checkpoint('c4', 6.9), checkpoint('c3', 7.5), checkpoint('c2', 8), checkpoint('c1', 30)];
    expect(selectExpiredPoints(entries, CHECKPOINT_KIND, 7, now).map((e) => e.id)).toEqual(['c2', 'c1']);
    // All past the window: the newest alone stays, and it is the one the window's first moments restore from.
    expect(selectExpiredPoints([checkpoint('c2', 10), checkpoint('c1', 11)], CHECKPOINT_KIND, 7, now).map((e) => e.id)).toEqual(['c1']);
  });

  it('gives checkpoint and export ids that sort by time, and reads them back from their keys only', () => {
    const id = pointInTimeId(new Date('2026-12-02T04:16:26.123Z'), '1a2b3c');
    expect(id).toBe('20261202T041626123Z-1a2b3c');
    expect(pointIdTime(id)).toBe(Date.parse('2026-12-02T04:16:26.123Z'));
    expect(parsePointInTimeKey(checkpointsPrefix('d'), checkpointKey('d', id, 'manifest.json'))).toEqual({ id, file: 'manifest.json' });
    expect(parsePointInTimeKey(checkpointsPrefix('d'), 'd/checkpoints/not-an-id/manifest.json')).toBeUndefined();
    expect(() => pointInTimeId(new Date(), 'XYZ')).toThrow(/6 lower-case hex digits/);
  });
});
