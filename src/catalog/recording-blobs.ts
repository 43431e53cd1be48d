// How a recording becomes a blob: its identity, the key that seals it, and the blob name that binds the two.
import { createHash, hkdfSync } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ChunkOpener, DEFAULT_CHUNK_SIZE, HEADER_LENGTH, TAG_LENGTH, encryptedSize, parseHeader } from '../crypto/frame-format';
import { createDecryptStream } from '../crypto/stream-cipher';
import { blobKey, isNotFound, readHeadOf, type BackupLocation } from '../storage';
import type { IndexEntry, RecordingEntry } from './recordings-index';

/**
 * A recording's identity: its key, ETag and size. Recordings are immutable, so the same identity is the same content,
 * and "already copied" is a question about names, not about bytes.
 */
export function recordingIdentity(entry: RecordingEntry): string {
  return createHash('sha256').update(`${entry.key}\n${entry.etag}\n${entry.size}`).digest('hex');
}

/**
 * The key of a blob first written by a backup: derived (HKDF-SHA256) from that backup's random data key and the
 * recording's identity, so a retried attempt derives it again and recognises its own blobs.
 */
export function deriveBlobKey(dataKey: Buffer, identity: string): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, Buffer.from(identity, 'hex'), 'vaultpam-backup recording blob v1', 32));
}

/**
 * The blob's name binds the recording's identity to the key that seals it: sha256 of both, in one of 256 shard
 * folders. Two backups that seal the same recording under different keys write two different blobs, so no write can
 * ever replace a blob that a committed backup reads with one its index cannot open.
 */
export function blobNameFor(identity: string, blobKey: Buffer): string {
  const keyTag = createHash('sha256').update('vaultpam-backup blob key tag\n').update(blobKey).digest('hex');
  const name = createHash('sha256').update(`vaultpam-backup blob v2\n${identity}\n${keyTag}`).digest('hex');
  return `${name.slice(0, 2)}/${name}`;
}

/** The blob a backup with this data key writes for a recording it copies. */
export function ownBlobOf(dataKey: Buffer, entry: RecordingEntry): { blob: string; blobKey: Buffer } {
  const identity = recordingIdentity(entry);
  const blobKey = deriveBlobKey(dataKey, identity);
  return { blob: blobNameFor(identity, blobKey), blobKey };
}

/** True when the object at `key` exists and its VPB1 header says it was sealed with `blobKey`. */
export async function blobSealedWith(location: BackupLocation, key: string, blobKey: Buffer): Promise<boolean> {
  let stream;
  try {
    // The header only: the key check of a blob costs a ranged read of its first bytes, whatever the blob's size.
    stream = await location.get(key, { start: 0, length: HEADER_LENGTH });
  } catch (err) {
    // An empty object cannot satisfy a range: it has no header either.
    if (isNotFound(err) || (err as { code?: unknown }).code === 'InvalidRange') return false;
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

/**
 * A blob's stored size and whether its VPB1 header says it was sealed with `blobKey`, in one request where the
 * location can; undefined when there is no blob under `key`.
 */
export async function blobState(location: BackupLocation, key: string, blobKey: Buffer): Promise<{ size: number; sealed: boolean } | undefined> {
  const found = await readHeadOf(location, key, HEADER_LENGTH);
  if (!found) return undefined;
  try {
    parseHeader(found.head, blobKey);
    return { size: found.size, sealed: true };
  } catch {
    return { size: found.size, sealed: false };
  }
}

/**
 * Reads a blob whole and opens it under the key its index entry names: every chunk's tag is checked. Resolves with
 * the plaintext size; throws when the blob is missing, damaged, sealed under another key or of another size.
 */
export async function readBlobWhole(location: BackupLocation, deployment: string, entry: IndexEntry, onBytes?: (n: number) => void): Promise<number> {
  const opener = createDecryptStream(Buffer.from(entry.blobKey, 'base64'));
  const stored = await location.get(blobKey(deployment, entry.blob));
  let plaintext = 0;
  await pipeline(
    stored,
    opener,
    new Writable({
      write(chunk: Buffer, _enc, callback) {
        plaintext += chunk.length;
        onBytes?.(plaintext);
        callback();
      },
    }),
  );
  if (plaintext !== entry.size) throw new Error(`it opens to ${plaintext} bytes, the index says ${entry.size}`);
  return plaintext;
}

/**
 * Opens at most `maxPlaintext` bytes of a blob under the key its index entry names: a blob that small is read whole
 * (readBlobWhole); a larger one is read from its start, one ranged request, and its first chunks are opened, every tag
 * checked, after its stored size is checked against the index. A sampled read of a large recording then costs what a
 * small one does, and still proves the blob is there, whole in size, and opens under that key. Resolves with the
 * plaintext bytes opened.
 */
export async function readBlobSample(location: BackupLocation, deployment: string, entry: IndexEntry, maxPlaintext: number, onBytes?: (n: number) => void): Promise<number> {
  if (entry.size <= maxPlaintext) return readBlobWhole(location, deployment, entry, onBytes);
  const sealKey = Buffer.from(entry.blobKey, 'base64');
  const chunks = Math.floor(maxPlaintext / DEFAULT_CHUNK_SIZE);
  // A blob sealed with chunks larger than the budget has no first chunk within it: it is read whole instead.
  if (chunks < 1) return readBlobWhole(location, deployment, entry, onBytes);
  const found = await readHeadOf(location, blobKey(deployment, entry.blob), HEADER_LENGTH + chunks * (DEFAULT_CHUNK_SIZE + TAG_LENGTH));
  if (!found) throw new Error('it is missing');
  const header = parseHeader(found.head, sealKey);
  if (header.chunkSize !== DEFAULT_CHUNK_SIZE) return readBlobWhole(location, deployment, entry, onBytes);
  if (found.size !== encryptedSize(entry.size, header.chunkSize)) throw new Error(`${found.size} bytes, expected ${encryptedSize(entry.size, header.chunkSize)}`);
  const opener = new ChunkOpener(sealKey, header);
  let plaintext = 0;
  // entry.size > chunks × chunk size: none of these chunks is the final one.
  for (let i = 0; i < chunks; i++) {
    const start = HEADER_LENGTH + i * (DEFAULT_CHUNK_SIZE + TAG_LENGTH);
    const record = found.head.subarray(start, start + DEFAULT_CHUNK_SIZE + TAG_LENGTH);
    if (record.length !== DEFAULT_CHUNK_SIZE + TAG_LENGTH) throw new Error(`it ends inside chunk ${i}`);
    plaintext += opener.open(record, false).length;
    onBytes?.(plaintext);
  }
  return plaintext;
}
