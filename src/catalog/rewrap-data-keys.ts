// Master-key rotation's work: every backup's data key (manifest and data-key.json), every restore journal's key, and
// every recordings checkpoint's and connector export's key (manifest, and a checkpoint's data-key.json) rewrapped under
// the active master key, in every location; no artifact and no blob is read or rewritten.
// Idempotent per object: what is already under the active key is left alone, so a second run (or a retry after a
// crash at any line) finishes the job and changes nothing more.
import { unwrapKey, wrappedKeySchema, type KeyRing, type WrappedKey } from '../crypto';
import { backupKey, backupsPrefix, isNotFound, manifestKey, parseManifestKey, restoreJournalKey, restoresPrefix, type BackupLocation } from '../storage';
import { readAll } from './artifacts';
import { readManifest, writeManifest } from './catalog';
import { CHECKPOINT_KIND, CONNECTOR_EXPORT_KIND, type PointKind } from './checkpoint-manifest';
import { DATA_KEY_ARTIFACT, readWrappedKey } from './data-key';
import { POINT_DATA_KEY_FILE, listPointIds, readPointManifest, writePointManifest } from './point-in-time-catalog';

export interface RotationResult {
  activeKeyId: string;
  /** Backups whose key was rewrapped somewhere, with the key they were under and where (the first 100). */
  rewrapped: { backupId: string; from: string; locations: string[] }[];
  rewrappedCount: number;
  /** Backups already under the active key in every location. */
  alreadyCurrent: number;
  /** Restore journals whose data key was rewrapped. */
  journalsRewrapped: number;
  /** Recordings checkpoints whose manifest or data-key.json was rewritten somewhere. */
  checkpointsRewrapped: number;
  /** Connector exports whose manifest was rewritten somewhere. */
  connectorExportsRewrapped: number;
}

type PointIds = { committed: string[]; pending: string[] };

/**
 * The point-in-time manifests of one kind at one location under the active key: data key rewrapped, MAC computed
 * again. The MAC must verify first: sealing again must never launder an edited manifest into an authentic one.
 */
async function rewrapPoints<M>(location: BackupLocation, kind: PointKind<M>, deployment: string, ids: PointIds, keyRing: KeyRing, progress: (detail: Record<string, unknown>) => void): Promise<Set<string>> {
  const active = keyRing.activeKeyId;
  const changed = new Set<string>();
  for (const id of ids.committed) {
    const manifest = await readPointManifest(location, kind, deployment, id, keyRing);
    if (!manifest) continue;
    const wrapped = kind.dataKeyOf(manifest);
    const macKeyId = (manifest as { authentication?: { keyId: string } }).authentication?.keyId;
    if (wrapped.keyId !== active || macKeyId !== active) {
      const rewrapped = wrapped.keyId === active ? manifest : kind.withDataKey(manifest, keyRing.wrap(unwrapKey(wrapped, keyRing)));
      const { failed } = await writePointManifest([location], kind, rewrapped, keyRing);
      if (failed[0]) throw failed[0].error;
      changed.add(id);
    }
    progress({ location: location.name, kind: kind.what, id });
  }
  // A checkpoint keeps its data key beside it from its first attempt on, for a retry to take it up.
  for (const id of [...ids.committed, ...ids.pending]) {
    const key = kind.key(deployment, id, POINT_DATA_KEY_FILE);
    const stored = await readJournalKey(location, key);
    if (stored && stored.keyId !== active) {
      await location.put(key, Buffer.from(JSON.stringify(keyRing.wrap(unwrapKey(stored, keyRing)))));
      changed.add(id);
    }
  }
  return changed;
}

/** A location that could not be listed: the rotation stops before it rewrote anything. */
export class RotationListingError extends Error {
  constructor(
    readonly location: string,
    cause: Error,
  ) {
    super(`location "${location}" cannot be listed (${cause.message}); nothing was rewrapped. Bring it back, or remove it from "locations", then run rotate-key again`);
    this.name = 'RotationListingError';
  }
}

const MAX_LISTED = 100;

/** A journal's data-key.json found by listing restoresPrefix(); undefined for any other key. */
function journalIdOf(deployment: string, key: string): string | undefined {
  const rest = key.slice(restoresPrefix(deployment).length).split('/');
  return rest.length === 2 && rest[1] === DATA_KEY_ARTIFACT && rest[0] ? rest[0] : undefined;
}

async function readJournalKey(location: BackupLocation, key: string): Promise<WrappedKey | undefined> {
  try {
    return wrappedKeySchema.parse(JSON.parse((await readAll(await location.get(key))).toString('utf8')));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function rewrapDataKeys(locations: readonly BackupLocation[], deployment: string, keyRing: KeyRing, progress: (detail: Record<string, unknown>) => void = () => {}): Promise<RotationResult> {
  const active = keyRing.activeKeyId;
  const rewrap = (wrapped: WrappedKey) => keyRing.wrap(unwrapKey(wrapped, keyRing));

  // Every location listed first, strictly: one that cannot be listed fails the rotation before anything changes.
  const listed: { location: BackupLocation; backups: string[]; journals: string[]; checkpoints: PointIds; exports: PointIds }[] = [];
  for (const location of locations) {
    const backups: string[] = [];
    const journals: string[] = [];
    let checkpoints: PointIds;
    let exports: PointIds;
    try {
      checkpoints = await listPointIds(location, CHECKPOINT_KIND as PointKind<unknown>, deployment);
      exports = await listPointIds(location, CONNECTOR_EXPORT_KIND as PointKind<unknown>, deployment);
      for await (const item of location.list(backupsPrefix(deployment))) {
        const parsed = parseManifestKey(deployment, item.key);
        if (parsed) backups.push(parsed.backupId);
      }
      for await (const item of location.list(restoresPrefix(deployment))) {
        const restoreId = journalIdOf(deployment, item.key);
        if (restoreId) journals.push(restoreId);
      }
    } catch (err) {
      throw new RotationListingError(location.name, err as Error);
    }
    listed.push({ location, backups, journals, checkpoints, exports });
    progress({ listed: location.name, backups: backups.length, journals: journals.length });
  }

  const changed = new Map<string, { from: string; locations: string[] }>();
  const seen = new Set<string>();
  let journalsRewrapped = 0;
  const checkpointsChanged = new Set<string>();
  const exportsChanged = new Set<string>();
  for (const { location, backups, journals, checkpoints, exports } of listed) {
    for (const id of await rewrapPoints(location, CHECKPOINT_KIND, deployment, checkpoints, keyRing, progress)) checkpointsChanged.add(id);
    for (const id of await rewrapPoints(location, CONNECTOR_EXPORT_KIND, deployment, exports, keyRing, progress)) exportsChanged.add(id);
    for (const backupId of backups) {
      seen.add(backupId);
      // Read right before writing: a backup pruned since the listing is not brought back. Its MAC must verify: sealing
      // it again under the new key must never launder an edited manifest into an authentic one.
      const manifest = await readManifest(location, deployment, backupId, { keyRing });
      if (!manifest) continue;
      const from = manifest.encryption.dataKey.keyId;
      let rewrote = false;
      const stored = await readWrappedKey(location, deployment, backupId);
      if (stored && stored.keyId !== active) {
        await location.put(backupKey(deployment, backupId, DATA_KEY_ARTIFACT), Buffer.from(JSON.stringify(rewrap(stored))));
        rewrote = true;
      }
      const macKeyId = manifest.authentication?.keyId;
      if (from !== active || (macKeyId !== undefined && macKeyId !== active)) {
        if (from !== active) manifest.encryption.dataKey = rewrap(manifest.encryption.dataKey);
        if (await location.exists(manifestKey(deployment, backupId))) {
          await writeManifest(location, manifest, keyRing);
          rewrote = true;
        }
      }
      if (rewrote) {
        const entry = changed.get(backupId) ?? { from: stored && stored.keyId !== active ? stored.keyId : from, locations: [] };
        entry.locations.push(location.name);
        changed.set(backupId, entry);
      }
      progress({ location: location.name, backupId });
    }
    for (const restoreId of journals) {
      const key = restoreJournalKey(deployment, restoreId, DATA_KEY_ARTIFACT);
      const wrapped = await readJournalKey(location, key);
      if (wrapped && wrapped.keyId !== active) {
        await location.put(key, Buffer.from(JSON.stringify(rewrap(wrapped))));
        journalsRewrapped += 1;
      }
      progress({ location: location.name, restoreId });
    }
  }
  const rewrapped = [...changed.entries()].map(([backupId, c]) => ({ backupId, from: c.from, locations: c.locations }));
  return {
    activeKeyId: active,
    rewrapped: rewrapped.slice(0, MAX_LISTED),
    rewrappedCount: rewrapped.length,
    alreadyCurrent: [...seen].filter((id) => !changed.has(id)).length,
    journalsRewrapped,
    checkpointsRewrapped: checkpointsChanged.size,
    connectorExportsRewrapped: exportsChanged.size,
  };
}
