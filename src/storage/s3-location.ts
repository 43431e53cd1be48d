// Backup location in an S3-compatible bucket, through the minio client.
import type { BucketItem, Client } from 'minio';
import type { Readable } from 'node:stream';
import type { LocationConfig } from '../config/schema';
import type { IncomingMessage } from 'node:http';
import type { BackupLocation, ByteRange, ListedObject, ObjectHead, ObjectStat, PutResult } from './backup-location';
import { assertValidKey, assertValidPrefix, normaliseRootPrefix } from './object-key';
import { readHeadByStat } from './read-head';
import { MAX_PARTS } from './s3-client';
import { putBuffer, uploadInParts } from './s3-part-upload';
import { TransferBudget } from './transfer-budget';
import { LocationUnavailableError, NotFoundError, SizeMismatchError, StorageError } from './storage-errors';

export type S3LocationConfig = Extract<LocationConfig, { kind: 's3' }>;

/** S3's DeleteObjects takes at most 1000 keys; batches go one after another to stay gentle on the server. */
const DELETE_BATCH = 1000;

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.length > 0 ? code : undefined;
}

const MISSING_OBJECT_CODES = new Set(['NoSuchKey', 'NotFound']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN']);
const CREDENTIAL_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden']);

export class S3Location implements BackupLocation {
  readonly kind = 's3' as const;
  readonly name: string;
  readonly region: string;
  readonly bucket: string;
  /** "" or "prefix/": prepended to every key. */
  private readonly rootPrefix: string;
  private readonly address: string;

  /**
   * @param budget where part buffers come from: the worker's (backup.memoryBudgetMiB), shared by every location and
   * the restore; a budget of its own, without limit, when none is given.
   */
  constructor(
    config: S3LocationConfig,
    private readonly client: Client,
    private readonly budget: TransferBudget = new TransferBudget(Infinity),
  ) {
    this.name = config.name;
    this.region = config.region;
    this.bucket = config.bucket;
    this.rootPrefix = normaliseRootPrefix(config.prefix);
    this.address = `${config.useSSL ? 'https://' : ''}${config.endPoint}:${config.port}`;
  }

  /** Bytes per multipart part: each upload holds one or two buffers of this size from the budget. */
  get partSize(): number {
    return this.client.partSize;
  }

  describe(): string {
    return `s3://${this.bucket}${this.rootPrefix ? `/${this.rootPrefix.slice(0, -1)}` : ''} at ${this.address} (region ${this.region})`;
  }

  private objectName(key: string): string {
    assertValidKey(key);
    return `${this.rootPrefix}${key}`;
  }

  /** Turns transport and bucket-level failures into errors that name the location; others pass through. */
  private translate(err: unknown, action: string): unknown {
    const code = errorCode(err);
    if (code === 'NoSuchBucket') {
      return new LocationUnavailableError(this.name, `location "${this.name}" (${this.describe()}): bucket "${this.bucket}" does not exist; run ensureReady() or create it`, { cause: err });
    }
    if (code && (UNREACHABLE_CODES.has(code) || CREDENTIAL_CODES.has(code))) {
      return new LocationUnavailableError(this.name, `location "${this.name}" (${this.describe()}): ${action} failed: ${this.reason(err)}`, { cause: err });
    }
    return err;
  }

  private reason(err: unknown): string {
    const code = errorCode(err);
    const message = err instanceof Error && err.message ? err.message : '';
    const hint = code && UNREACHABLE_CODES.has(code)
      ? '; check that the server runs and endPoint/port are right'
      : !code || CREDENTIAL_CODES.has(code)
        ? '; check accessKey and secretKey (and that the server accepts this region)'
        : '';
    return `${[code, message].filter(Boolean).join(': ') || 'the server rejected the request without detail'}${hint}`;
  }

  async ensureReady(): Promise<void> {
    try {
      if (await this.client.bucketExists(this.bucket)) return;
      await this.client.makeBucket(this.bucket);
    } catch (err) {
      if (errorCode(err) === 'BucketAlreadyOwnedByYou') return; // created concurrently by another worker
      throw new LocationUnavailableError(this.name, `location "${this.name}" (${this.describe()}) is not usable: ${this.reason(err)}`, { cause: err });
    }
  }

  async put(key: string, body: Readable | Buffer, size?: number): Promise<PutResult> {
    const objectName = this.objectName(key);
    const mismatch = (actual: number): Error => new SizeMismatchError(this.name, key, size ?? 0, actual);
    if (Buffer.isBuffer(body)) {
      if (size !== undefined && size !== body.length) throw mismatch(body.length);
      return this.putWhole(key, objectName, body);
    }
    const partSize = this.partSize;
    if (size !== undefined && size > partSize * MAX_PARTS) {
      body.destroy();
      throw new StorageError(
        'VPB_ERR_OBJECT_TOO_LARGE',
        `"${key}" is ${size} bytes; location "${this.name}" takes at most ${partSize * MAX_PARTS} bytes per object with ${partSize}-byte parts; raise partSize`,
      );
    }

    try {
      return await uploadInParts({ client: this.client, bucket: this.bucket, objectName }, body, { size, partSize, budget: this.budget, mismatch });
    } catch (err) {
      body.destroy();
      throw this.translate(err, `put "${key}"`);
    }
  }

  private async putWhole(key: string, objectName: string, body: Buffer): Promise<PutResult> {
    try {
      return await putBuffer({ client: this.client, bucket: this.bucket, objectName }, body);
    } catch (err) {
      throw this.translate(err, `put "${key}"`);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const objectName = this.objectName(key);
    try {
      if (range) return await this.client.getPartialObject(this.bucket, objectName, range.start, range.length);
      return await this.client.getObject(this.bucket, objectName);
    } catch (err) {
      if (MISSING_OBJECT_CODES.has(errorCode(err) ?? '')) throw new NotFoundError(this.name, key, { cause: err });
      throw this.translate(err, `get "${key}"`);
    }
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    const objectName = this.objectName(key);
    try {
      const info = await this.client.statObject(this.bucket, objectName);
      return { size: info.size, etag: info.etag };
    } catch (err) {
      if (MISSING_OBJECT_CODES.has(errorCode(err) ?? '')) return undefined;
      throw this.translate(err, `stat "${key}"`);
    }
  }

  async readHead(key: string, length: number): Promise<ObjectHead | undefined> {
    const objectName = this.objectName(key);
    let response: IncomingMessage;
    try {
      response = (await this.client.getPartialObject(this.bucket, objectName, 0, Math.max(1, length))) as IncomingMessage;
    } catch (err) {
      if (MISSING_OBJECT_CODES.has(errorCode(err) ?? '')) return undefined;
      // A range starting at byte 0 is unsatisfiable only for an empty object.
      if (errorCode(err) === 'InvalidRange') return { head: Buffer.alloc(0), size: 0 };
      throw this.translate(err, `read the head of "${key}"`);
    }
    const parts: Buffer[] = [];
    let read = 0;
    try {
      for await (const part of response as AsyncIterable<Buffer>) {
        parts.push(part);
        read += part.length;
        if (read >= length) break;
      }
    } finally {
      response.destroy();
    }
    // "bytes 0-24/65561": the total after the slash; a server that ignored the range sent the whole object instead.
    const total = /\/(\d+)\s*$/.exec(String(response.headers?.['content-range'] ?? ''));
    const size = total ? Number(total[1]) : Number(response.headers?.['content-length'] ?? NaN);
    if (!Number.isSafeInteger(size)) return readHeadByStat(this, key, length);
    return { head: Buffer.concat(parts).subarray(0, length), size };
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    assertValidPrefix(prefix);
    // listObjectsV2 follows continuation tokens itself; iterating it keeps one page in memory.
    const items = this.client.listObjectsV2(this.bucket, `${this.rootPrefix}${prefix}`, true) as AsyncIterable<BucketItem>;
    try {
      for await (const item of items) {
        // Some servers report directory markers ("a/b/"); no key of ours ends in "/".
        if (!item.name || item.name.endsWith('/')) continue;
        yield { key: item.name.slice(this.rootPrefix.length), size: item.size };
      }
    } catch (err) {
      throw this.translate(err, `list "${prefix}"`);
    }
  }

  async delete(keys: string[]): Promise<void> {
    const names = keys.map((key) => this.objectName(key));
    for (let i = 0; i < names.length; i += DELETE_BATCH) {
      let results: unknown[];
      try {
        results = await this.client.removeObjects(this.bucket, names.slice(i, i + DELETE_BATCH));
      } catch (err) {
        throw this.translate(err, 'delete');
      }
      // minio returns the <Error> entries of the quiet DeleteObjects answer; the typings nest them under `Error`.
      const failures = results
        .map((result) => (result && typeof result === 'object' && 'Error' in result ? (result as { Error: unknown }).Error : result))
        .filter((failure): failure is { Code?: string; Key?: string } => !!failure && typeof failure === 'object')
        .filter((failure) => failure.Code !== 'NoSuchKey');
      if (failures.length > 0) {
        const sample = failures.slice(0, 3).map((f) => `${f.Key ?? '?'} (${f.Code ?? 'error'})`).join(', ');
        throw new StorageError('VPB_ERR_DELETE_FAILED', `location "${this.name}" (${this.describe()}) could not delete ${failures.length} object(s): ${sample}`);
      }
    }
  }
}
