// The catalog is the set of manifests in the locations: it survives the loss of the database it protects.
import type { KeyRing } from '../crypto';
import { isNotFound, manifestKey, parseManifestKey, backupsPrefix, type BackupLocation } from '../storage';
import { readAll } from './artifacts';
import { parseManifest, type Manifest } from './manifest';
import { checkManifestMac, sealManifest, type UnsealedManifest } from './manifest-mac';

export interface ReadManifestOptions {
  /** When given, the manifest's MAC is checked: an edited manifest is an error, not a backup. */
  keyRing?: KeyRing;
}

export interface CatalogEntry {
  backupId: string;
  manifest: Manifest;
  /** Locations holding a readable manifest of this backup. */
  locations: string[];
  /** Manifests that could not be read, by location (corrupt or not JSON). */
  problems: { location: string; message: string }[];
}

export async function readManifest(location: BackupLocation, deployment: string, backupId: string, options: ReadManifestOptions = {}): Promise<Manifest | undefined> {
  const key = manifestKey(deployment, backupId);
  const where = `${location.describe()}/${key}`;
  let manifest: Manifest;
  try {
    manifest = parseManifest((await readAll(await location.get(key))).toString('utf8'), where);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  if (manifest.deployment !== deployment || manifest.backupId !== backupId) {
    throw new Error(`the manifest at ${where} describes backup ${manifest.backupId} of ${manifest.deployment}: it was moved or edited`);
  }
  if (options.keyRing) checkManifestMac(manifest, options.keyRing, where);
  return manifest;
}

/** The one way a manifest is written: with its MAC under the active master key. */
export async function writeManifest(location: BackupLocation, manifest: Manifest | UnsealedManifest, keyRing: KeyRing): Promise<Manifest> {
  const sealed = sealManifest(manifest, keyRing);
  await location.put(manifestKey(sealed.deployment, sealed.backupId), Buffer.from(JSON.stringify(sealed, null, 2)));
  return sealed;
}

/** Every committed backup of a deployment across the locations, newest first. */
/**
 * `strict`: a location that cannot be listed, or a manifest that cannot be read, is an error instead of a gap;
 * whoever deletes by what the catalog does not hold (retention) must not mistake an outage for absence.
 */
export async function listBackups(locations: readonly BackupLocation[], deployment: string, options: { strict?: boolean } & ReadManifestOptions = {}): Promise<CatalogEntry[]> {
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
        const manifest = await readManifest(location, deployment, backupId, options);
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
/** The newest committed backup whose consistent point is at or before `at` (catalog newest first). */
export function findBackupAt(catalog: readonly CatalogEntry[], at: Date): CatalogEntry | undefined {
  return catalog.find((e) => new Date(e.manifest.quiesce.recordingsPoint) <= at);
}
