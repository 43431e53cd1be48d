// Master-key rotation: every backup's data key rewrapped under the active master key, one small field per backup;
// no artifact and no blob is read or rewritten. Idempotent: what is already under the active key is left alone.
import { readAll } from '../catalog/artifacts';
import { listBackups, writeManifest } from '../catalog/catalog';
import { checkManifestMac } from '../catalog/manifest-mac';
import { DATA_KEY_ARTIFACT, readWrappedKey } from '../catalog/data-key';
import type { Manifest } from '../catalog/manifest';
import { unwrapKey, type KeyRing } from '../crypto';
import { backupKey, manifestKey, type BackupLocation } from '../storage';

export interface RotationResult {
  activeKeyId: string;
  rewrapped: { backupId: string; from: string; locations: string[] }[];
  alreadyCurrent: number;
}

export async function rotateMasterKey(locations: readonly BackupLocation[], deployment: string, keyRing: KeyRing): Promise<RotationResult> {
  const result: RotationResult = { activeKeyId: keyRing.activeKeyId, rewrapped: [], alreadyCurrent: 0 };
  for (const entry of await listBackups(locations, deployment)) {
    const from = entry.manifest.encryption.dataKey.keyId;
    if (from === keyRing.activeKeyId) {
      result.alreadyCurrent += 1;
      continue;
    }
    const dataKey = unwrapKey(entry.manifest.encryption.dataKey, keyRing);
    const wrapped = keyRing.wrap(dataKey);
    const done: string[] = [];
    for (const location of locations) {
      if (!entry.locations.includes(location.name)) continue;
      // The manifest as this location holds it, so a location's own fields are kept; only the wrapped key changes.
      const manifest = JSON.parse((await readAll(await location.get(manifestKey(deployment, entry.backupId)))).toString('utf8')) as Manifest;
      // Sealing again must never launder an edited manifest into an authentic one: its current MAC must verify first.
      checkManifestMac(manifest, keyRing, `${location.describe()}/${manifestKey(deployment, entry.backupId)}`);
      if ((await readWrappedKey(location, deployment, entry.backupId)) !== undefined) {
        await location.put(backupKey(deployment, entry.backupId, DATA_KEY_ARTIFACT), Buffer.from(JSON.stringify(wrapped)));
      }
      manifest.encryption.dataKey = wrapped;
      await writeManifest(location, manifest, keyRing);
      done.push(location.name);
    }
    result.rewrapped.push({ backupId: entry.backupId, from, locations: done });
  }
  return result;
}
