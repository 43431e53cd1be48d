// The one interface every backup location fills; code above it never knows which driver it holds.
import type { Readable } from 'node:stream';

export type LocationKind = 's3' | 'filesystem';

export interface PutResult {
  /** Driver-specific content tag (the S3 ETag); absent on the filesystem. */
  etag?: string;
}

export interface ObjectStat {
  size: number;
  etag?: string;
}

/** `length` bytes from `start` (0-based). */
export interface ByteRange {
  start: number;
  length: number;
}

/** An object's first bytes and its whole size. */
export interface ObjectHead {
  head: Buffer;
  size: number;
}

export interface ListedObject {
  /** Relative to the location root, so it can be passed back to get/stat/delete as is. */
  key: string;
  size: number;
}

/**
 * A place backups are written to. Keys are relative paths ("<deployment>/backups/<id>/manifest.json");
 * the driver places them under the location's own prefix. A key with an empty, "." or ".." segment,
 * a leading "/" or a backslash is refused by every driver with an InvalidKeyError.
 */
export interface BackupLocation {
  readonly name: string;
  /** Geographic label from the configuration; replication needs two distinct ones. */
  readonly region: string;
  readonly kind: LocationKind;

  /**
   * Streams `body` to `key`, replacing any object there; memory stays flat whatever the size.
   * The object appears whole or not at all. When `size` is given, a body of another length is
   * an error and nothing is left under `key`.
   */
  put(key: string, body: Readable | Buffer, size?: number): Promise<PutResult>;
  /**
   * Throws NotFoundError (see isNotFound) when there is no object under `key`. With `range`, only those bytes are
   * read (fewer when the object ends first): a header check costs a header, not the object.
   */
  get(key: string, range?: ByteRange): Promise<Readable>;
  stat(key: string): Promise<ObjectStat | undefined>;
  /**
   * The first `length` bytes (fewer when the object is shorter) and the object's size, in one request where the
   * driver can (a blob's size and key check for the price of one round trip); undefined when there is no object.
   * Optional: readHeadOf falls back to a stat and a ranged get.
   */
  readHead?(key: string, length: number): Promise<ObjectHead | undefined>;
  exists(key: string): Promise<boolean>;
  /** Every object whose key starts with `prefix` (recursive), in ascending key order. */
  list(prefix: string): AsyncIterable<ListedObject>;
  /** Deletes in bulk; keys that do not exist are not an error. */
  delete(keys: string[]): Promise<void>;
  /** Creates the bucket or directory if absent; throws LocationUnavailableError naming the location if it cannot. */
  ensureReady(): Promise<void>;
  /** Human-readable address for logs and errors; never holds a secret. */
  describe(): string;
}
