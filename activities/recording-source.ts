// Where a recording is read from for a restore: the first location whose blob verifies (present, right size, header
// key check, and a whole authenticated decrypt), trying the locations in order, so one bad copy costs one object only.
import { PassThrough } from 'node:stream';
import { CryptoError, createDecryptStream, encryptedSize } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { blobKey, isNotFound, type BackupLocation, type TransferBudget } from '../src/storage';
import { metadataHeaders, uploadInParts } from '../src/storage/s3-part-upload';
import { blobState } from '../src/catalog/recording-blobs';
import { locationByName } from './backup-context';
import type { IndexEntry } from '../src/catalog/recordings-index';

/** User metadata every restored object carries: which restore wrote this version (S3 stores it as x-amz-meta-…). */
export const RESTORED_BY_METADATA = 'vaultpam-restore-id';

export interface LocationProblem {
  location: string;
  problem: string;
}

/** A recording that no location holds in a form that verifies; `problems` says what was wrong at each. */
export class RecordingUnrecoverableError extends Error {
  constructor(
    readonly key: string,
    readonly problems: LocationProblem[],
  ) {
    super(`recording ${key} verifies at no location: ${problems.map((p) => `${p.location}: ${p.problem}`).join('; ')}`);
    this.name = 'RecordingUnrecoverableError';
  }
}

/** A problem with the copy itself (absent, cut, altered, another key), as opposed to a location that did not answer. */
export class BlobProblemError extends Error {}

function isCopyProblem(err: unknown): boolean {
  return err instanceof BlobProblemError || err instanceof CryptoError || isNotFound(err);
}

/** The location a backup verified at first, then every other configured one, in configuration order. */
export function locationsInOrder(deps: Dependencies, preferred: string): BackupLocation[] {
  const first = locationByName(deps, preferred);
  return [first, ...deps.locations().filter((l) => l.name !== first.name)];
}

/** Undefined when the blob at `location` is present, of the size its recording implies, and sealed with its key. */
export async function blobProblem(location: BackupLocation, deployment: string, entry: IndexEntry): Promise<string | undefined> {
  const key = blobKey(deployment, entry.blob);
  // Size and header from one ranged read.
  const found = await blobState(location, key, Buffer.from(entry.blobKey, 'base64'));
  if (!found) return `blob ${key} is missing`;
  const expected = encryptedSize(entry.size);
  if (found.size !== expected) return `blob ${key} is ${found.size} bytes, expected ${expected}`;
  if (!found.sealed) return `blob ${key} fails its header key check`;
  return undefined;
}

export interface PutFromBackupResult {
  /** The ETag the bucket gave the version written. */
  etag: string;
  /** The location that served it. */
  location: string;
  /** Locations tried before it and what was wrong there. */
  skipped: LocationProblem[];
}

/**
 * Decrypts the recording into the bucket from the first location where it verifies. A copy that fails to decrypt
 * aborts its own upload before the object is completed (nothing partial lands), then the next location is tried.
 * Throws RecordingUnrecoverableError when every location's copy is bad; when a location did not answer either, a plain
 * (retryable) error.
 */
export async function putRecordingFromBackup(
  deps: Dependencies,
  target: { client: ReturnType<Dependencies['recordingsClient']>; bucket: string },
  deployment: string,
  entry: IndexEntry,
  locations: BackupLocation[],
  metadata: Record<string, string>,
): Promise<PutFromBackupResult> {
  const skipped: LocationProblem[] = [];
  let unanswered: unknown;
  for (const location of locations) {
    try {
      const problem = await blobProblem(location, deployment, entry);
      if (problem) throw new BlobProblemError(problem);
      const etag = await uploadDecrypted(deps.transferBudget(), target, location, deployment, entry, metadata);
      return { etag, location: location.name, skipped };
    } catch (err) {
      // A location that does not answer is passed over too: another may hold a good copy.
      if (!isCopyProblem(err)) unanswered ??= err;
      skipped.push({ location: location.name, problem: (err as Error).message });
    }
  }
  // Unrecoverable only if every location answered with a bad copy; otherwise a retry may find one back.
  if (unanswered !== undefined) throw new Error(`recording ${entry.key} could not be read from any location: ${skipped.map((p) => `${p.location}: ${p.problem}`).join('; ')}`);
  throw new RecordingUnrecoverableError(entry.key, skipped);
}

async function uploadDecrypted(
  budget: TransferBudget,
  target: { client: ReturnType<Dependencies['recordingsClient']>; bucket: string },
  location: BackupLocation,
  deployment: string,
  entry: IndexEntry,
  metadata: Record<string, string>,
): Promise<string> {
  const { client, bucket } = target;
  const source = await location.get(blobKey(deployment, entry.blob));
  const decrypt = createDecryptStream(Buffer.from(entry.blobKey, 'base64'));
  // The body ends only if every chunk authenticated, the final one included: on an error it is destroyed without
  // ending, so the object is never completed (a multipart upload is aborted, its parts removed).
  const body = new PassThrough();
  let failed: Error | undefined;
  const failedPromise = new Promise<never>((_, reject) => {
    const fail = (err: Error) => {
      failed ??= err;
      source.destroy();
      body.destroy();
      reject(failed);
    };
    source.on('error', fail);
    decrypt.on('error', fail);
  });
  failedPromise.catch(() => undefined);
  source.pipe(decrypt).pipe(body);
  // Part buffers from the worker's budget; a body of the wrong length or a failed decrypt aborts the upload.
  const put = uploadInParts({ client, bucket, objectName: entry.key, headers: metadataHeaders(metadata) }, body, {
    size: entry.size,
    partSize: client.partSize,
    budget,
    mismatch: (actual) => new BlobProblemError(`blob ${blobKey(deployment, entry.blob)} decrypted to ${actual} bytes, expected ${entry.size}`),
  });
  try {
    return (await Promise.race([put, failedPromise])).etag;
  } catch (err) {
    // The upload sees its body destroyed, aborts its parts and returns its buffers: only then is the attempt over.
    await put.catch(() => undefined);
    if (failed) throw failed;
    throw err;
  }
}
