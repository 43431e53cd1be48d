// Which backups retention removes: regular backups by keepLast/keepDays, safety snapshots by a rule of their own,
// pinned backups never. Pure, so the policy is tested without storage.
import type { CatalogEntry } from './catalog';

/** The tag a restore's safety snapshot carries. */
export const SAFETY_SNAPSHOT_TAG = 'pre-restore';
/** The tag of a backup made from a moment of point-in-time protection, for a restore to that moment. */
export const POINT_IN_TIME_TAG = 'point-in-time';

export interface RetentionPolicy {
  keepLast: number;
  keepDays: number;
  keepSafetySnapshotsDays: number;
}

export function isSafetySnapshot(entry: Pick<CatalogEntry, 'manifest'>): boolean {
  return entry.manifest.tags.includes(SAFETY_SNAPSHOT_TAG);
}

export function isPointInTimeBackup(entry: Pick<CatalogEntry, 'manifest'>): boolean {
  return entry.manifest.tags.includes(POINT_IN_TIME_TAG);
}

/** Backups a restore made (its safety snapshot, or the backup of the moment it restores): not part of the daily series. */
export function isMadeByRestore(entry: Pick<CatalogEntry, 'manifest'>): boolean {
  return isSafetySnapshot(entry) || isPointInTimeBackup(entry);
}

/**
 * `catalog` newest first (as listBackups returns it). Regular backups: kept while among the newest `keepLast` regular
 * ones or younger than `keepDays`; the newest regular backup always. Safety snapshots do not count toward keepLast
 * (a few restores must not push the daily backups out) and are kept for `keepSafetySnapshotsDays`; so are the backups
 * made from a moment for a restore to it. The newest backup
 * of all is always kept, and so is every backup named by a pin in force.
 */
export function selectExpired(catalog: readonly CatalogEntry[], policy: RetentionPolicy, now: Date, pinned: ReadonlySet<string>): { expired: CatalogEntry[]; keptForPins: string[] } {
  const age = (e: CatalogEntry) => now.getTime() - new Date(e.manifest.startedAt).getTime();
  const expired: CatalogEntry[] = [];
  const keptForPins: string[] = [];
  let regularSeen = 0;
  catalog.forEach((entry, i) => {
    let expires: boolean;
    if (isMadeByRestore(entry)) {
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

/**
 * The retained backups that can name a blob of an expired one, so that only their indexes need reading before the
 * expired backups' blobs are swept; undefined when the manifests cannot tell (then every retained index is read).
 *
 * A backup names a blob of another only through the backup it built on (`recordings.previousBackupId`): it shares
 * the blobs that backup's index names for the same recordings, and seals everything else under its own key. So the
 * backups naming one blob are connected along those links, and a retained one connected to an expired one is
 * reached from the expired side through: a retained backup built on an expired one; the retained backup an expired
 * one built on; or, past backups removed earlier, a retained backup whose own link leads to a removed one (marked
 * whatever it shares). What cannot be followed is an expired backup built on a removed one while an older backup is
 * retained (the link may go on through the removed one to it), or a backup that shares blobs without naming the one
 * it built on (written by an older version): then the answer is undefined.
 */
export function retainedNeighbours(catalog: readonly CatalogEntry[], expired: readonly CatalogEntry[]): CatalogEntry[] | undefined {
  const inCatalog = new Set(catalog.map((e) => e.backupId));
  const expiredIds = new Set(expired.map((e) => e.backupId));
  const kept = catalog.filter((e) => !expiredIds.has(e.backupId));
  const previousOf = (e: CatalogEntry) => e.manifest.recordings.previousBackupId;
  if (catalog.some((e) => previousOf(e) === undefined && e.manifest.recordings.reusedObjects > 0)) return undefined;
  const builtOnByExpired = new Set<string>();
  for (const e of expired) {
    const previous = previousOf(e);
    if (previous === undefined) continue;
    if (!inCatalog.has(previous) && kept.some((k) => k.manifest.startedAt <= e.manifest.startedAt)) return undefined;
    builtOnByExpired.add(previous);
  }
  return kept.filter((k) => {
    const previous = previousOf(k);
    return builtOnByExpired.has(k.backupId) || (previous !== undefined && (expiredIds.has(previous) || !inCatalog.has(previous)));
  });
}
