// Writing and reading encrypted artifacts in one pass: encrypt, count and hash (plaintext and stored bytes) while streaming.
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDecryptStream, createEncryptStream } from '../crypto';
import { isNotFound, type BackupLocation } from '../storage';
import { putToEach } from '../storage/fan-out-put';
import type { Artifact } from './manifest';

/** Counts and hashes what flows through, unchanged. */
export class Meter extends Transform {
  readonly hash: Hash | undefined;
  bytes = 0;
  /** `hashing: false` only counts: copies of blobs whose integrity GCM already guards need no SHA-256. */
  constructor(
    private readonly onBytes?: (total: number) => void,
    hashing = true,
  ) {
    super();
    this.hash = hashing ? createHash('sha256') : undefined;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    callback(null, chunk);
  }
  digest(): string {
    if (!this.hash) throw new Error('this meter only counts bytes');
    return this.hash.digest('hex');
  }
}

export interface WriteArtifactOptions {
  onBytes?: (plaintextBytes: number) => void;
  signal?: AbortSignal;
}

/** Encrypts `source` under `dataKey` into `key` at `location`; nothing unencrypted touches disk. */
export async function writeArtifact(location: BackupLocation, key: string, source: Readable | Buffer, dataKey: Buffer, options: WriteArtifactOptions = {}): Promise<Artifact> {
  const plain = new Meter(options.onBytes);
  const stored = new Meter();
  const body = new PassThrough();
  const input = Buffer.isBuffer(source) ? Readable.from([source]) : source;
  const flowing = pipeline(input, plain, createEncryptStream(dataKey), stored, body, ...(options.signal ? [{ signal: options.signal }] : []));
  // put() consumes `body`; if the pipeline fails, `body` is destroyed and put() rejects too.
  const [, put] = await Promise.allSettled([flowing, location.put(key, body)]);
  await flowing;
  if (put.status === 'rejected') throw put.reason;
  return { key, size: stored.bytes, sha256: stored.digest(), plaintextBytes: plain.bytes, plaintextSha256: plain.digest() };
}

/**
 * Encrypts `source` under `dataKey` once and puts the same bytes under `key` at every one of `locations` in one pass,
 * so the artifact's checksum holds in each. A location whose write fails drops out (`failed`); a failure of the
 * source fails every write and is thrown.
 */
export async function writeArtifactToEach(
  locations: readonly BackupLocation[],
  key: string,
  source: Readable | Buffer,
  dataKey: Buffer,
  options: WriteArtifactOptions = {},
): Promise<{ artifact: Artifact; written: string[]; failed: { location: string; error: Error }[] }> {
  const plain = new Meter(options.onBytes);
  const stored = new Meter();
  const body = new PassThrough();
  const input = Buffer.isBuffer(source) ? Readable.from([source]) : source;
  const flowing = pipeline(input, plain, createEncryptStream(dataKey), stored, body, ...(options.signal ? [{ signal: options.signal }] : []));
  const [, put] = await Promise.allSettled([flowing, putToEach(locations, key, body)]);
  await flowing;
  if (put.status === 'rejected') throw put.reason;
  const artifact: Artifact = { key, size: stored.bytes, sha256: stored.digest(), plaintextBytes: plain.bytes, plaintextSha256: plain.digest() };
  return { artifact, written: put.value.written, failed: put.value.failed };
}

/** SHA-256 and size of an artifact's stored bytes at a location. */
/** How stored bytes differ from an artifact's recorded size and SHA-256, or undefined when they match. */
export function checksumMismatch(stored: { size: number; sha256: string }, artifact: Pick<Artifact, 'size' | 'sha256'>): string | undefined {
  if (stored.size !== artifact.size) return `${stored.size} bytes stored, ${artifact.size} recorded`;
  if (stored.sha256 !== artifact.sha256) return `SHA-256 ${stored.sha256} differs from the recorded ${artifact.sha256}`;
  return undefined;
}

/** The stored bytes of an artifact differ from its recorded size or SHA-256: a damaged or substituted copy. */
export class ArtifactChecksumError extends Error {
  constructor(
    readonly key: string,
    readonly where: string,
    /** What differs, as `checksumMismatch` says it. */
    readonly detail: string,
  ) {
    super(`${key} at ${where} does not match its checksum: ${detail}`);
    this.name = 'ArtifactChecksumError';
  }
}

export async function hashStored(location: BackupLocation, key: string, onBytes?: (n: number) => void): Promise<{ size: number; sha256: string }> {
  const meter = new Meter(onBytes);
  await pipeline(await location.get(key), meter, new PassThrough().resume());
  return { size: meter.bytes, sha256: meter.digest() };
}

/**
 * The decrypted content of an artifact as a stream. The stored bytes are hashed on the way: a mismatch with the
 * recorded checksum errors the stream at its end, so a consumer never takes a substituted artifact for the real one.
 */
export async function openArtifact(location: BackupLocation, artifact: Artifact, dataKey: Buffer): Promise<Readable> {
  const stored = await location.get(artifact.key);
  const meter = new Meter();
  const check = new Transform({
    transform(chunk, _enc, cb) {
      cb(null, chunk);
    },
    flush(cb) {
      const mismatch = checksumMismatch({ size: meter.bytes, sha256: meter.digest() }, artifact);
      cb(mismatch ? new ArtifactChecksumError(artifact.key, location.describe(), mismatch) : undefined);
    },
  });
  const out = new PassThrough();
  pipeline(stored, meter, check, createDecryptStream(dataKey), out).catch((err: Error) => out.destroy(err));
  return out;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** The object at `key` as UTF-8 text, or undefined when the location has none (any other failure is thrown). */
export async function readTextIfPresent(location: BackupLocation, key: string): Promise<string | undefined> {
  try {
    return (await readAll(await location.get(key))).toString('utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
