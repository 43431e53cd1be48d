// One recording blob at one location, examined (present, size, header key, optionally read whole against the
// recording's identity) and, on request, restored from a location where it verifies or from the live bucket.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Meter } from '../src/catalog/artifacts';
import { blobState } from '../src/catalog/recording-blobs';
import type { IndexEntry } from '../src/catalog/recordings-index';
import { CryptoError, createDecryptStream, createEncryptStream, encryptedSize } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { blobKey, isNotFound, type BackupLocation } from '../src/storage';
import type { CheckProblemKind } from '../workflows/check-types';
import { copyBlobVerified } from './replicate';

export type BlobVerdict = { ok: true; bytesRead: number } | { ok: false; kind: CheckProblemKind; detail: string; bytesRead: number };

/** An S3 ETag that is the MD5 of the object's bytes (a single-part upload without SSE-KMS): 32 hex digits, no "-". */
const PLAIN_MD5_ETAG = /^[0-9a-f]{32}$/;

/**
 * Reads the blob whole and opens it under the index's key (every chunk's tag checked), then compares the plaintext
 * with the recording's identity: its size and, where the ETag is a plain MD5, its MD5.
 */
async function readAgainstIdentity(location: BackupLocation, deployment: string, entry: IndexEntry, onBytes?: () => void): Promise<BlobVerdict> {
  const md5 = createHash('md5');
  let plaintext = 0;
  try {
    await pipeline(
      await location.get(blobKey(deployment, entry.blob)),
      createDecryptStream(Buffer.from(entry.blobKey, 'base64')),
      new Writable({
        write(chunk: Buffer, _enc, callback) {
          plaintext += chunk.length;
          md5.update(chunk);
          onBytes?.();
          callback();
        },
      }),
    );
  } catch (err) {
    if (isNotFound(err)) return { ok: false, kind: 'blob-missing', detail: 'it is missing', bytesRead: plaintext };
    // Only what the cipher refuses is damage; a read that fails (a dropped connection) is retried, not reported.
    if (err instanceof CryptoError) return { ok: false, kind: 'blob-damaged', detail: `it does not open: ${err.message}`, bytesRead: plaintext };
    throw err;
  }
  if (plaintext !== entry.size) return { ok: false, kind: 'blob-damaged', detail: `it opens to ${plaintext} bytes, the index says ${entry.size}`, bytesRead: plaintext };
  if (PLAIN_MD5_ETAG.test(entry.etag)) {
    const digest = md5.digest('hex');
    if (digest !== entry.etag) return { ok: false, kind: 'blob-content', detail: `its content's MD5 ${digest} differs from the recording's ETag ${entry.etag}`, bytesRead: plaintext };
  }
  return { ok: true, bytesRead: plaintext };
}

/** Present, of the size the index implies, sealed under the index's key; with `readData`, read whole as well. */
export async function inspectBlob(location: BackupLocation, deployment: string, entry: IndexEntry, readData: boolean, onBytes?: () => void): Promise<BlobVerdict> {
  const key = blobKey(deployment, entry.blob);
  // Size and header from one ranged read.
  const found = await blobState(location, key, Buffer.from(entry.blobKey, 'base64'));
  if (!found) return { ok: false, kind: 'blob-missing', detail: 'it is missing', bytesRead: 0 };
  const expected = encryptedSize(entry.size);
  if (found.size !== expected) return { ok: false, kind: 'blob-size', detail: `${found.size} bytes stored, ${expected} expected for a ${entry.size}-byte recording`, bytesRead: 0 };
  if (!found.sealed) {
    return { ok: false, kind: 'blob-key', detail: 'its header was not sealed with the key the index names (rewritten under another key, or damaged)', bytesRead: 0 };
  }
  return readData ? readAgainstIdentity(location, deployment, entry, onBytes) : { ok: true, bytesRead: 0 };
}

/**
 * Seals the live recording under the key the index names into the blob's own name: the name binds that key, so the
 * write restores exactly what the index expects. Only when the bucket still holds the same version (ETag and size).
 */
async function sealFromBucket(deps: Dependencies, to: BackupLocation, deployment: string, entry: IndexEntry, onBytes?: () => void): Promise<void> {
  const client = deps.recordingsClient('production');
  const bucket = deps.deployment('production').recordings.bucket;
  let stat;
  try {
    stat = await client.statObject(bucket, entry.key);
  } catch (err) {
    if ((err as { code?: string }).code === 'NotFound' || (err as { code?: string }).code === 'NoSuchKey') throw new Error('gone from the recordings bucket');
    throw err;
  }
  const etag = stat.etag.replace(/"/g, '');
  if (etag !== entry.etag || stat.size !== entry.size) {
    throw new Error(`the recordings bucket holds another version (ETag ${etag}, ${stat.size} bytes; the index names ${entry.etag}, ${entry.size} bytes)`);
  }
  const source = await client.getObject(bucket, entry.key);
  const meter = new Meter(onBytes, false);
  const body = source.pipe(meter).pipe(createEncryptStream(Buffer.from(entry.blobKey, 'base64')));
  source.on('error', (err) => body.destroy(err));
  await to.put(blobKey(deployment, entry.blob), body, encryptedSize(entry.size));
}

export type BlobRepair = { outcome: 'repaired'; from: string } | { outcome: 'refused'; reason: string };

/**
 * Restores a blob that failed its inspection at `to`: copied as ciphertext from the first other location where it
 * reads whole against the recording's identity, else sealed again from the live bucket. Each result is read whole
 * at `to` before it counts as repaired. The caller repairs only blobs that did not verify.
 */
export async function repairBlob(deps: Dependencies, to: BackupLocation, deployment: string, entry: IndexEntry, onBytes?: () => void): Promise<BlobRepair> {
  const problems: string[] = [];
  const confirm = async (from: string): Promise<BlobRepair | undefined> => {
    const after = await inspectBlob(to, deployment, entry, true, onBytes);
    if (after.ok) return { outcome: 'repaired', from };
    problems.push(`${from}: the copy written does not verify (${after.detail})`);
    return undefined;
  };
  for (const from of deps.locations().filter((l) => l.name !== to.name)) {
    const there = await inspectBlob(from, deployment, entry, true, onBytes).catch((err: Error) => ({ ok: false as const, detail: err.message }));
    if (!there.ok) {
      problems.push(`${from.name}: ${there.detail}`);
      continue;
    }
    try {
      await copyBlobVerified(from, to, deployment, entry, onBytes);
    } catch (err) {
      problems.push(`${from.name}: ${(err as Error).message}`);
      continue;
    }
    const done = await confirm(from.name);
    if (done) return done;
  }
  try {
    await sealFromBucket(deps, to, deployment, entry, onBytes);
    const done = await confirm('recordings bucket');
    if (done) return done;
  } catch (err) {
    problems.push(`recordings bucket: ${(err as Error).message}`);
  }
  return { outcome: 'refused', reason: `no good copy: ${problems.join('; ')}` };
}
