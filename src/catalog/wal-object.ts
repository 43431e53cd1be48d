// A WAL object (segment or partial segment): a small header naming its key epoch, then the WAL in the VPB1 framing.
// Each one opens on its own from its location and the master key; see docs/encryption-format.md, "WAL objects".
import { decryptBuffer, encryptBuffer, type KeyRing } from '../crypto';
import type { BackupLocation } from '../storage';
import { readAll } from './artifacts';
import { loadWalKey } from './wal-key-epoch';

const MAGIC = Buffer.from('VPW1', 'ascii');
const EPOCH = /^[0-9A-Za-z-]{1,64}$/;

/** `VPW1`, the epoch's length (1 byte), the epoch (ASCII), then a VPB1 stream under that epoch's data key. */
export function encodeWalObject(plaintext: Buffer, epoch: string, dataKey: Buffer): Buffer {
  if (!EPOCH.test(epoch)) throw new TypeError(`a WAL key epoch must be 1-64 letters, digits or "-", got ${JSON.stringify(epoch)}`);
  const name = Buffer.from(epoch, 'ascii');
  return Buffer.concat([MAGIC, Buffer.from([name.length]), name, encryptBuffer(dataKey, plaintext)]);
}

/** The epoch a WAL object names, and where its VPB1 stream starts. */
export function walObjectEpoch(stored: Buffer, where: string): { epoch: string; bodyOffset: number } {
  if (stored.length < 6 || !stored.subarray(0, 4).equals(MAGIC)) throw new Error(`${where} is not a WAL object (no VPW1 header)`);
  const length = stored[4]!;
  const epoch = stored.subarray(5, 5 + length).toString('ascii');
  if (!EPOCH.test(epoch)) throw new Error(`${where} names no valid key epoch in its header`);
  return { epoch, bodyOffset: 5 + length };
}

export interface WalObjectReader {
  keyRing: KeyRing;
  deployment: string;
  /** Where the epoch's key object is looked for: the object's own location first, then these. */
  keyLocations: readonly BackupLocation[];
  /** Unwrapped epoch keys, so each epoch is unwrapped once per reader. */
  keyCache: Map<string, Buffer>;
}

/** The plaintext of the WAL object `key` at `location`; throws (naming it) when it is missing, corrupt or fails authentication. */
export async function readWalObject(location: BackupLocation, key: string, reader: WalObjectReader): Promise<Buffer> {
  const where = `${key} at ${location.describe()}`;
  const stored = await readAll(await location.get(key));
  const { epoch, bodyOffset } = walObjectEpoch(stored, where);
  const dataKey = await loadWalKey([location, ...reader.keyLocations.filter((l) => l !== location)], reader.deployment, epoch, reader.keyRing, reader.keyCache);
  try {
    return decryptBuffer(dataKey, stored.subarray(bodyOffset));
  } catch (err) {
    throw new Error(`${where} cannot be decrypted: ${(err as Error).message}`);
  }
}

export interface WalObjectWrite {
  /** Locations that hold the object now (written by this call, or found there by a retry). */
  written: string[];
  failed: { location: string; error: Error }[];
}

/**
 * Writes a WAL object once to each location that lacks it. Complete segments are write-once: a location that
 * already holds one (an earlier attempt) keeps it. Partials carry their end LSN in their name, so they too are new names.
 */
export async function putWalObject(locations: readonly BackupLocation[], key: string, body: Buffer): Promise<WalObjectWrite> {
  const results = await Promise.allSettled(
    locations.map(async (location) => {
      if (await location.exists(key)) return;
      await location.put(key, body, body.length);
    }),
  );
  const result: WalObjectWrite = { written: [], failed: [] };
  results.forEach((r, i) => {
    const name = locations[i]!.name;
    if (r.status === 'fulfilled') result.written.push(name);
    else result.failed.push({ location: name, error: r.reason instanceof Error ? r.reason : new Error(String(r.reason)) });
  });
  return result;
}
