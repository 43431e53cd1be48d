// The catalog is the set of manifests in the locations: it survives the loss of the database it protects.
import { isNotFound, manifestKey, parseManifestKey, backupsPrefix, type BackupLocation } from '../storage';
import { readAll } from './artifacts';
import { parseManifest, type Manifest } from './manifest';
import type { KeyRing } from '../crypto';

export interface CatalogEntry {
  backupId: string;
  manifest: Manifest;
  /** Locations holding a readable manifest of this backup. */
  locations: string[];
  /** Manifests that could not be read, by location (corrupt or not JSON). */
  problems: { location: string; message: string }[];
}

export async function readManifest(location: BackupLocation, deployment: string, backupId: string): Promise<Manifest | undefined> {
  const key = manifestKey(deployment, backupId);
  try {
    return parseManifest((await readAll(await location.get(key))).toString('utf8'), `${location.describe()}/${key}`);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Every committed backup of a deployment across the locations, newest first. */
/**
 * `strict`: a location that cannot be listed, or a manifest that cannot be read, is an error instead of a gap;
 * whoever deletes by what the catalog does not hold (retention) must not mistake an outage for absence.
 */
export async function listBackups(locations: readonly BackupLocation[], deployment: string, options: { strict?: boolean } = {}): Promise<CatalogEntry[]> {
  const entries = new Map<string, CatalogEntry>();
  for (const location of locations) {
    let keys: string[] = [];
    try {
      for await (const item of location.list(backupsPrefix(deployment))) {
        if (parseManifestKey(deployment, item.key)) keys.push(item.key);
      }
    } catch (err) {
      if (options.strict) throw err;
      keys = [];
    }
    for (const key of keys) {
      const { backupId } = parseManifestKey(deployment, key)!;
      const entry = entries.get(backupId) ?? { backupId, manifest: undefined as unknown as Manifest, locations: [], problems: [] };
      try {
        const manifest = await readManifest(location, deployment, backupId);
        if (manifest) {
          entry.manifest ??= manifest;
          entry.locations.push(location.name);
        }
      } catch (err) {
        if (options.strict) throw err;
        entry.problems.push({ location: location.name, message: (err as Error).message });
      }
      entries.set(backupId, entry);
    }
  }
  return [...entries.values()]
    .filter((e) => e.manifest !== undefined)
    .sort((a, b) => (a.manifest.startedAt < b.manifest.startedAt ? 1 : a.manifest.startedAt > b.manifest.startedAt ? -1 : 0));
}

/**
 * The one writer of manifest.json (commit, key rotation): whatever a manifest must carry besides its fields is added
 * here. The key ring is the one the manifest's data key is wrapped by.
 */
export async function writeManifest(location: BackupLocation, deployment: string, manifest: Manifest, _keyRing: KeyRing): Promise<void> {
  await location.put(manifestKey(deployment, manifest.backupId), Buffer.from(JSON.stringify(manifest, null, 2)));
}

/** The newest committed backup whose consistent point is at or before `at` (catalog newest first). */
export function findBackupAt(catalog: readonly CatalogEntry[], at: Date): CatalogEntry | undefined {
  return catalog.find((e) => new Date(e.manifest.quiesce.recordingsPoint) <= at);
}
