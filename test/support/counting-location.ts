// A real backup location that records every request made to it (operation and key), to assert what a step asks for.
import type { Readable } from 'node:stream';
import type { BackupLocation, ByteRange, ListedObject, ObjectHead, ObjectStat, PutResult } from '../../src/storage';

export type LocationOperation = 'put' | 'get' | 'stat' | 'readHead' | 'exists' | 'list' | 'delete';

export interface LocationRequest {
  operation: LocationOperation;
  /** The object's key, or the listing's prefix. */
  key: string;
}

export class CountingLocation implements BackupLocation {
  readonly name: string;
  readonly region: string;
  readonly kind: BackupLocation['kind'];
  /** Every request, in the order made; a delete of several keys is one request per key. */
  readonly requests: LocationRequest[] = [];

  constructor(readonly real: BackupLocation) {
    this.name = real.name;
    this.region = real.region;
    this.kind = real.kind;
  }

  /** The requests whose key (or listing prefix) starts with `prefix`. */
  under(prefix: string): LocationRequest[] {
    return this.requests.filter((r) => r.key.startsWith(prefix));
  }

  private record(operation: LocationOperation, key: string): void {
    this.requests.push({ operation, key });
  }

  put(key: string, body: Readable | Buffer, size?: number): Promise<PutResult> {
    this.record('put', key);
    return this.real.put(key, body, size);
  }

  get(key: string, range?: ByteRange): Promise<Readable> {
    this.record('get', key);
    return this.real.get(key, range);
  }

  stat(key: string): Promise<ObjectStat | undefined> {
    this.record('stat', key);
    return this.real.stat(key);
  }

  readHead(key: string, length: number): Promise<ObjectHead | undefined> {
    this.record('readHead', key);
    // Through the real driver's own single request where it has one, as the activities would go.
    return this.real.readHead ? this.real.readHead(key, length) : this.headByStat(key, length);
  }

  private async headByStat(key: string, length: number): Promise<ObjectHead | undefined> {
    const { readHeadByStat } = await import('../../src/storage/read-head');
    return readHeadByStat(this.real, key, length);
  }

  exists(key: string): Promise<boolean> {
    this.record('exists', key);
    return this.real.exists(key);
  }

  list(prefix: string): AsyncIterable<ListedObject> {
    this.record('list', prefix);
    return this.real.list(prefix);
  }

  delete(keys: string[]): Promise<void> {
    for (const key of keys) this.record('delete', key);
    return this.real.delete(keys);
  }

  ensureReady(): Promise<void> {
    return this.real.ensureReady();
  }

  describe(): string {
    return `${this.real.describe()} [counted]`;
  }
}
