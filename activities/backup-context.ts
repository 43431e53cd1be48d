// What the backup activities share: the primary location, the data key of a backup, the recordings blob scheme.
import { createHash, hkdfSync } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { loadDataKey } from '../src/catalog/data-key';
import { CryptoError } from '../src/crypto';
import { HEADER_LENGTH, parseHeader } from '../src/crypto/frame-format';
import type { Dependencies } from '../src/runtime/dependencies';
import { isNotFound, type BackupLocation } from '../src/storage';

/** The first configured location receives every artifact first; replication copies from it to the others. */
export function primaryLocation(deps: Dependencies): BackupLocation {
  const [primary] = deps.locations();
  if (!primary) throw ApplicationFailure.create({ type: 'LocationsInvalid', message: 'no backup location is configured', nonRetryable: true });
  return primary;
}

export function locationByName(deps: Dependencies, name: string): BackupLocation {
  const location = deps.locations().find((l) => l.name === name);
  if (!location) throw ApplicationFailure.create({ type: 'LocationsInvalid', message: `no location named "${name}" is configured`, nonRetryable: true });
  return location;
}

/** Per set of dependencies (one configuration, one key ring): a key unwrapped under one ring is not another's. */
const dataKeys = new WeakMap<Dependencies, Map<string, Buffer>>();

/** Unwrapped once per worker and backup; never leaves the worker. */
export async function backupDataKey(deps: Dependencies, deployment: string, backupId: string): Promise<Buffer> {
  let cache = dataKeys.get(deps);
  if (!cache) dataKeys.set(deps, (cache = new Map()));
  const cacheKey = `${deployment}/${backupId}`;
  let key = cache.get(cacheKey);
  if (!key) {
    try {
      key = await loadDataKey(deps.locations(), deployment, backupId, deps.keyRing());
    } catch (err) {
      // A missing or wrong master key is a configuration problem: retrying cannot fix it, the operator can.
      if (err instanceof CryptoError) throw ApplicationFailure.create({ type: 'KeyUnavailable', message: err.message, nonRetryable: true });
      throw err;
    }
    if (cache.size > 64) cache.clear();
    cache.set(cacheKey, key);
  }
  return key;
}

/** One entry of the recordings listing taken at the consistent point. */
export interface ListingEntry {
  /** Object key in the recordings bucket. */
  k: string;
  s: number;
  e: string;
}

/** One entry of a backup's recordings index: where the object's ciphertext is and the key that opens it. */
export interface IndexEntry extends ListingEntry {
  /** Blob id (its key in blobs/). */
  b: string;
  /** The blob's own AES-256 key, base64; the index is encrypted under the backup's data key. */
  bk: string;
}

/**
 * Blobs are addressed by the object's identity (key, ETag, size): recordings are immutable, so the same identity is
 * the same content, and a retry or the next backup can tell "already copied" with a HEAD instead of reading it again.
 */
export function blobIdOf(entry: ListingEntry): string {
  return createHash('sha256').update(`${entry.k}\n${entry.e}\n${entry.s}`).digest('hex');
}

/**
 * A blob first written by a backup gets a key derived from that backup's random data key and the blob id (HKDF),
 * so a retried attempt re-derives it and recognises its own blobs by the header's key check.
 */
export function deriveBlobKey(dataKey: Buffer, blobId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, Buffer.from(blobId, 'hex'), 'vaultpam-backup recording blob v1', 32));
}

/** True when the blob at `key` exists and its header says it was sealed with `blobKey`. */
export async function blobSealedWith(location: BackupLocation, key: string, blobKey: Buffer): Promise<boolean> {
  let stream;
  try {
    stream = await location.get(key);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  const parts: Buffer[] = [];
  let length = 0;
  try {
    for await (const part of stream) {
      parts.push(part as Buffer);
      length += (part as Buffer).length;
      if (length >= HEADER_LENGTH) break;
    }
  } finally {
    stream.destroy();
  }
  try {
    parseHeader(Buffer.concat(parts), blobKey);
    return true;
  } catch {
    return false;
  }
}

/** A bounded pool: at most `limit` tasks run at once; `run` waits for a free slot (back-pressure on the producer). */
export class TaskPool {
  private running = 0;
  private waiters: (() => void)[] = [];
  private failure: unknown;
  private readonly all = new Set<Promise<void>>();
  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.running >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failure) throw this.failure;
    this.running += 1;
    const p = task()
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.running -= 1;
        this.all.delete(p);
        this.waiters.shift()?.();
      });
    this.all.add(p);
  }

  async drain(): Promise<void> {
    while (this.all.size > 0) await Promise.all([...this.all]);
    if (this.failure) throw this.failure;
  }
}
