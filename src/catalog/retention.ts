// Which backups retention removes: regular backups by keepLast/keepDays, safety snapshots by a rule of their own,
// pinned backups never. Pure, so the policy is tested without storage.
import type { CatalogEntry } from './catalog';

/** The tag a restore's safety snapshot carries. */
export const SAFETY_SNAPSHOT_TAG = 'pre-restore';

export interface RetentionPolicy {
  keepLast: number;
  keepDays: number;
  keepSafetySnapshotsDays: number;
}

export function isSafetySnapshot(entry: Pick<CatalogEntry, 'manifest'>): boolean {
  return entry.manifest.tags.includes(SAFETY_SNAPSHOT_TAG);
}

/**
 * `catalog` newest first (as listBackups returns it). Regular backups: kept while among the newest `keepLast` regular
 * ones or younger than `keepDays`; the newest regular backup always. Safety snapshots do not count toward keepLast
 * (a few restores must not push the daily backups out) and are kept for `keepSafetySnapshotsDays`. The newest backup
 * of all is always kept, and so is every backup named by a pin in force.
 */
export function selectExpired(catalog: readonly CatalogEntry[], policy: RetentionPolicy, now: Date, pinned: ReadonlySet<string>): { expired: CatalogEntry[]; keptForPins: string[] } {
  const age = (e: CatalogEntry) => now.getTime() - new Date(e.manifest.startedAt).getTime();
  const expired: CatalogEntry[] = [];
  const keptForPins: string[] = [];
  let regularSeen = 0;
  catalog.forEach((entry, i) => {
    let expires: boolean;
    if (isSafetySnapshot(entry)) {
      expires = age(entry) > policy.keepSafetySnapshotsDays * 86_400_000;
    } else {
      expires = regularSeen >= policy.keepLast && age(entry) > policy.keepDays * 86_400_000;
      regularSeen += 1;
    }
    if (i === 0 || !expires) return;
    if (pinned.has(entry.backupId)) keptForPins.push(entry.backupId);
    else expired.push(entry);
  });
  return { expired, keptForPins };
}
