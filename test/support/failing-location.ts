// Fault injection over a real backup location: the real driver stores everything until the chosen put, then puts fail.
import type { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupLocation, ListedObject, ObjectStat, PutResult } from '../../src/storage';

export interface FailingLocationOptions {
  /** Puts that reach the real driver before the first refusal. @default 0 */
  failAfterPuts?: number;
  /** Only puts whose key matches count and fail; others pass through. @default every key */
  keys?: (key: string) => boolean;
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
  /** Keys the real driver stored. */
  readonly stored: string[] = [];
  /** Keys refused. */
  readonly refused: string[] = [];
  private readonly limit: number;
  private readonly matches: (key: string) => boolean;

  constructor(
    readonly real: BackupLocation,
    options: FailingLocationOptions = {},
  ) {
    this.name = real.name;
    this.region = real.region;
    this.kind = real.kind;
    this.limit = options.failAfterPuts ?? 0;
    this.matches = options.keys ?? (() => true);
  }

  async put(key: string, body: Readable | Buffer, size?: number): Promise<PutResult> {
    if (!this.matches(key)) return this.real.put(key, body, size);
    if (this.stored.length >= this.limit) {
      this.refused.push(key);
      // A real driver consumes or destroys the body it is handed; an abandoned source stream would hold its socket.
      if (!Buffer.isBuffer(body)) body.destroy();
      throw ApplicationFailure.create({
        type: 'InjectedLocationFailure',
        message: `injected failure: location "${this.name}" refuses "${key}" (fault injection after ${this.limit} put(s))`,
        nonRetryable: true,
      });
    }
    // Counted before the write, so concurrent puts cannot all slip under the limit.
    this.stored.push(key);
    return this.real.put(key, body, size);
  }

  get(key: string): Promise<Readable> {
    return this.real.get(key);
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
