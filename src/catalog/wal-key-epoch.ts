// The WAL stream's data keys: one per key epoch, stored wrapped in every location; segments name their epoch, so
// rotating the master key rewraps these small objects and never rewrites a segment.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { generateDataKey, unwrapKey, wrappedKeySchema, type KeyRing, type WrappedKey } from '../crypto';
import { isNotFound, parseWalKeyEpochKey, walKeyEpochKey, walKeyEpochsPrefix, type BackupLocation } from '../storage';
import { readAll } from './artifacts';

export const walKeyEpochSchema = z.object({
  format: z.literal(1),
  epoch: z.string().regex(/^[0-9A-Za-z-]{1,64}$/),
  createdAt: z.iso.datetime(),
  dataKey: wrappedKeySchema,
});
export type WalKeyEpoch = z.infer<typeof walKeyEpochSchema>;

/** A key epoch is used this long before the stream starts another: a leaked WAL key exposes at most one epoch. */
export const WAL_KEY_EPOCH_MS = 24 * 3600 * 1000;

export async function readWalKeyEpoch(location: BackupLocation, deployment: string, epoch: string): Promise<WalKeyEpoch | undefined> {
  const key = walKeyEpochKey(deployment, epoch);
  try {
    return walKeyEpochSchema.parse(JSON.parse((await readAll(await location.get(key))).toString('utf8')));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw new Error(`the WAL key epoch ${key} at ${location.describe()} cannot be read: ${(err as Error).message}`);
  }
}

/** The epochs at a location, oldest first (their names begin with the time they were made). */
export async function listWalKeyEpochs(location: BackupLocation, deployment: string): Promise<string[]> {
  const epochs: string[] = [];
  for await (const object of location.list(walKeyEpochsPrefix(deployment))) {
    const parsed = parseWalKeyEpochKey(deployment, object.key);
    if (parsed) epochs.push(parsed.epoch);
  }
  return epochs.sort();
}

export interface CurrentWalKey {
  epoch: string;
  dataKey: Buffer;
}

/**
 * The epoch new segments are written under: the newest one every location holds, while it is younger than
 * WAL_KEY_EPOCH_MS; otherwise a new one, written to every location before any segment names it.
 */
export async function ensureWalKeyEpoch(locations: readonly BackupLocation[], deployment: string, keyRing: KeyRing, now: Date): Promise<CurrentWalKey> {
  const [first, ...others] = locations;
  if (!first) throw new Error('point-in-time protection needs at least one backup location');
  const candidates = (await listWalKeyEpochs(first, deployment)).reverse();
  for (const epoch of candidates.slice(0, 1)) {
    const stored = await readWalKeyEpoch(first, deployment, epoch);
    if (!stored || now.getTime() - Date.parse(stored.createdAt) >= WAL_KEY_EPOCH_MS) break;
    const everywhere = await Promise.all(others.map((l) => l.exists(walKeyEpochKey(deployment, epoch))));
    if (everywhere.every(Boolean)) return { epoch, dataKey: unwrapKey(stored.dataKey, keyRing) };
  }
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const epoch = `${stamp}-${randomBytes(3).toString('hex')}`;
  const dataKey = generateDataKey();
  const record: WalKeyEpoch = { format: 1, epoch, createdAt: now.toISOString(), dataKey: keyRing.wrap(dataKey) };
  const body = Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
  await Promise.all(locations.map((l) => l.put(walKeyEpochKey(deployment, epoch), body)));
  return { epoch, dataKey };
}

/** Unwraps an epoch's data key from the first of `locations` that holds it (a cache keeps each unwrap to once). */
export async function loadWalKey(locations: readonly BackupLocation[], deployment: string, epoch: string, keyRing: KeyRing, cache?: Map<string, Buffer>): Promise<Buffer> {
  const cached = cache?.get(epoch);
  if (cached) return cached;
  for (const location of locations) {
    const stored = await readWalKeyEpoch(location, deployment, epoch);
    if (!stored) continue;
    const dataKey = unwrapKey(stored.dataKey as WrappedKey, keyRing);
    cache?.set(epoch, dataKey);
    return dataKey;
  }
  throw new Error(`the WAL key epoch "${epoch}" is in no location (${locations.map((l) => l.name).join(', ')}): the segments written under it cannot be decrypted`);
}
