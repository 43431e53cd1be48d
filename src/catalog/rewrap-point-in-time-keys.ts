// Master-key rotation of point-in-time protection: WAL key epochs and base data keys rewrapped, base manifests and
// marks sealed again under the active key; no segment and no base tar is rewritten.
import { unwrapKey, type KeyRing } from '../crypto';
import { baseManifestKey, type BackupLocation, walKeyEpochKey } from '../storage';
import { listBaseManifests, sealBaseManifest } from './base-manifest';
import { listWalKeyEpochs, readWalKeyEpoch } from './wal-key-epoch';
import { readWalMark, writeWalMark } from './wal-mark';

export interface PointInTimeRotationResult {
  epochsRewrapped: number;
  basesRewrapped: number;
  marksResealed: number;
}

export async function rewrapPointInTimeKeys(locations: readonly BackupLocation[], deployment: string, keyRing: KeyRing, progress: (detail: Record<string, unknown>) => void = () => {}): Promise<PointInTimeRotationResult> {
  const result: PointInTimeRotationResult = { epochsRewrapped: 0, basesRewrapped: 0, marksResealed: 0 };
  const active = keyRing.activeKeyId;
  for (const location of locations) {
    for (const epoch of await listWalKeyEpochs(location, deployment)) {
      const stored = await readWalKeyEpoch(location, deployment, epoch);
      if (!stored || stored.dataKey.keyId === active) continue;
      const rewrapped = { ...stored, dataKey: keyRing.wrap(unwrapKey(stored.dataKey, keyRing)) };
      await location.put(walKeyEpochKey(deployment, epoch), Buffer.from(`${JSON.stringify(rewrapped, null, 2)}\n`));
      result.epochsRewrapped++;
      progress({ phase: 'wal-epochs', location: location.name, epoch });
    }
    for (const manifest of await listBaseManifests(location, deployment, keyRing)) {
      if (manifest.dataKey.keyId === active && manifest.authentication.keyId === active) continue;
      const sealed = sealBaseManifest({ ...manifest, dataKey: keyRing.wrap(unwrapKey(manifest.dataKey, keyRing)) }, keyRing);
      await location.put(baseManifestKey(deployment, manifest.baseId), Buffer.from(`${JSON.stringify(sealed, null, 2)}\n`));
      result.basesRewrapped++;
      progress({ phase: 'bases', location: location.name, baseId: manifest.baseId });
    }
    const mark = await readWalMark(location, deployment, keyRing);
    if (mark && mark.authentication.keyId !== active) {
      const { authentication: _old, ...rest } = mark;
      await writeWalMark(location, rest, keyRing);
      result.marksResealed++;
    }
  }
  return result;
}
