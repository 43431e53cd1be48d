// Fault injection over a real backup location: puts refused after the first N, or held back; the rest is the real driver.
import type { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupLocation, ByteRange, ListedObject, ObjectStat, PutResult } from '../../src/storage';

export interface FailingLocationOptions {
  /** Puts that reach the real driver before the first refusal; Infinity for a location that never refuses. @default 0 */
  failAfterPuts?: number;
  /** Counted puts refused before any goes through: a location that fails for a while, then comes back. @default 0 */
  refuseFirstPuts?: number;
  /** Only puts whose key matches count, wait and fail; others pass straight through. @default every key */
  keys?: (key: string) => boolean;
  /** Awaited before a counted put reaches the real driver: a slow link, or a gate the test opens. */
  beforePut?: (key: string) => Promise<void>;
  /** Called on every get, before it reaches the real driver: lets a test see when someone looks for a key. */
  onGet?: (key: string) => void;
}

/**
 * A location that refuses for good once `failAfterPuts` puts went through (a bucket deleted, a quota reached).
 * The refusal is a non-retryable failure: a transient one would only be retried by the transfer policy first.
 * Reads, listings and deletes stay real, so compensation can clean up what the successful puts left.
 */
export class FailingLocation implements BackupLocation {
  readonly name: string;
  readonly region: string;
  readonly kind: BackupLocation['kind'];
  /** Counted keys handed to the real driver, in order. */
  readonly stored: string[] = [];
  /** Counted keys refused. */
  readonly refused: string[] = [];
  private readonly limit: number;
  private readonly options: FailingLocationOptions;

  constructor(
    readonly real: BackupLocation,
    options: FailingLocationOptions = {},
  ) {
    this.name = real.name;
    this.region = real.region;
    this.kind = real.kind;
    this.limit = options.failAfterPuts ?? 0;
    this.options = options;
  }

  async put(key: string, body: Readable | Buffer, size?: number): Promise<PutResult> {
    if (this.options.keys && !this.options.keys(key)) return this.real.put(key, body, size);
    if (this.stored.length >= this.limit || this.refused.length < (this.options.refuseFirstPuts ?? 0)) {
      this.refused.push(key);
      // A real driver consumes or destroys the body it is handed; an abandoned source stream would hold its socket.
      if (!Buffer.isBuffer(body)) body.destroy();
      throw ApplicationFailure.create({
        type: 'InjectedLocationFailure',
        message: `injected failure: location "${this.name}" refuses "${key}" (fault injection after ${this.stored.length} put(s))`,
        nonRetryable: true,
      });
    }
    // Counted before the write, so concurrent puts cannot all slip under the limit.
    this.stored.push(key);
    if (this.options.beforePut) await this.options.beforePut(key);
    return this.real.put(key, body, size);
  }

  get(key: string, range?: ByteRange): Promise<Readable> {
    this.options.onGet?.(key);
    return this.real.get(key, range);
  }

  stat(key: string): Promise<ObjectStat | undefined> {
    return this.real.stat(key);
  }

  exists(key: string): Promise<boolean> {
    return this.real.exists(key);
  }

  list(prefix: string): AsyncIterable<ListedObject> {
    return this.real.list(prefix);
  }

  delete(keys: string[]): Promise<void> {
    return this.real.delete(keys);
  }

  ensureReady(): Promise<void> {
    return this.real.ensureReady();
  }

  describe(): string {
    return `${this.real.describe()} [fault injection]`;
  }
}
