// Retention of the point-in-time stream: base backups past the window, and the WAL no kept base needs.
import type { KeyRing } from '../crypto';
import { parseLsn, segmentName, segmentOf } from '../postgres/wal-position';
import { baseManifestKey, basesPrefix, parseWalKey, walPrefix, type BackupLocation } from '../storage';
import { listBaseManifests, type BaseManifest } from './base-manifest';

const DAY_MS = 86_400_000;
const DELETE_BATCH = 500;

export interface PointInTimeExpiry {
  /** Bases every moment of the window still needs: those that stopped inside it, the newest before it, the newest of all. */
  keep: BaseManifest[];
  expire: BaseManifest[];
  /** WAL segments named before this one (same or older timeline) are needed by no kept base; undefined: keep all WAL. */
  walBefore?: string;
}

/**
 * Which bases the window `windowDays` back from `now` needs. A moment at the window's start recovers from the newest
 * base that stopped at or before it, so that one stays with every base after it; the newest base always stays. WAL
 * is needed from the oldest kept base's start on.
 */
export function selectPointInTimeExpiry(bases: readonly BaseManifest[], windowDays: number, now: Date): PointInTimeExpiry {
  const sorted = [...bases].sort((a, b) => Date.parse(a.stopTime) - Date.parse(b.stopTime));
  if (sorted.length === 0) return { keep: [], expire: [] };
  const windowStart = now.getTime() - windowDays * DAY_MS;
  let first = 0;
  sorted.forEach((base, i) => {
    if (Date.parse(base.stopTime) <= windowStart) first = i;
  });
  const keep = sorted.slice(first);
  const oldest = keep.reduce((min, b) => (parseLsn(b.startLsn) < parseLsn(min.startLsn) ? b : min), keep[0]!);
  const walBefore = segmentName(segmentOf(parseLsn(oldest.startLsn), oldest.timeline, oldest.walSegmentBytes), oldest.walSegmentBytes);
  return { keep, expire: sorted.slice(0, first), walBefore };
}

export interface PointInTimePruneResult {
  basesRemoved: string[];
  basesKept: number;
  /** WAL objects (segments and partials) deleted, counted once per location. */
  walObjectsRemoved: number;
  walBefore?: string;
}

/**
 * Removes the bases past the window (the manifest first at every location: from then on the base does not exist)
 * and every WAL segment and partial older than the oldest kept base's start. Judged on the union of what the locations
 * hold, so a base held at one location only still keeps its WAL everywhere. Safe to run again: what is gone is not listed.
 */
export async function prunePointInTime(
  locations: readonly BackupLocation[],
  deployment: string,
  keyRing: KeyRing,
  windowDays: number,
  now: Date,
  onProgress: (progress: { phase: string; removed: number }) => void = () => {},
): Promise<PointInTimePruneResult> {
  const byId = new Map<string, BaseManifest>();
  for (const location of locations) for (const base of await listBaseManifests(location, deployment, keyRing)) byId.set(base.baseId, base);
  const expiry = selectPointInTimeExpiry([...byId.values()], windowDays, now);
  for (const base of expiry.expire) {
    for (const location of locations) await location.delete([baseManifestKey(deployment, base.baseId)]);
    for (const location of locations) {
      const keys: string[] = [];
      for await (const item of location.list(`${basesPrefix(deployment)}${base.baseId}/`)) keys.push(item.key);
      if (keys.length) await location.delete(keys);
    }
    onProgress({ phase: 'bases', removed: expiry.expire.indexOf(base) + 1 });
  }
  let walObjectsRemoved = 0;
  if (expiry.walBefore !== undefined) {
    const before = expiry.walBefore;
    for (const location of locations) {
      let batch: string[] = [];
      const flush = async () => {
        await location.delete(batch);
        walObjectsRemoved += batch.length;
        batch = [];
        onProgress({ phase: 'wal', removed: walObjectsRemoved });
      };
      // Segment names sort by timeline, then position: an older timeline's WAL before the base goes too.
      for await (const item of location.list(walPrefix(deployment))) {
        const wal = parseWalKey(deployment, item.key);
        if (!wal || wal.segment >= before) continue;
        batch.push(item.key);
        if (batch.length === DELETE_BATCH) await flush();
      }
      if (batch.length) await flush();
    }
  }
  return { basesRemoved: expiry.expire.map((b) => b.baseId), basesKept: expiry.keep.length, walObjectsRemoved, ...(expiry.walBefore ? { walBefore: expiry.walBefore } : {}) };
}
