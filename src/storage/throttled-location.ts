// A backup location whose reads and writes share one bandwidth limit (locations[].maxBytesPerSecond).
import { Readable } from 'node:stream';
import type { BackupLocation, ByteRange, ListedObject, ObjectHead, ObjectStat, PutResult } from './backup-location';
import { readHeadOf } from './read-head';
import { throttle, type RateLimiter } from './rate-limiter';

export class ThrottledLocation implements BackupLocation {
  constructor(
    private readonly inner: BackupLocation,
    private readonly limiter: RateLimiter,
  ) {}

  get name(): string {
    return this.inner.name;
  }
  get region(): string {
    return this.inner.region;
  }
  get kind() {
    return this.inner.kind;
  }

  async put(key: string, body: Readable | Buffer, size?: number): Promise<PutResult> {
    if (Buffer.isBuffer(body)) {
      await this.limiter.take(body.length);
      return this.inner.put(key, body, size);
    }
    const limited = body.pipe(throttle(this.limiter));
    body.on('error', (err) => limited.destroy(err));
    return this.inner.put(key, limited, size);
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const source = await this.inner.get(key, range);
    const limited = source.pipe(throttle(this.limiter));
    source.on('error', (err) => limited.destroy(err));
    // Whoever stops reading early destroys `limited`: the source goes with it.
    limited.on('close', () => source.destroy());
    return limited;
  }

  stat(key: string): Promise<ObjectStat | undefined> {
    return this.inner.stat(key);
  }
  async readHead(key: string, length: number): Promise<ObjectHead | undefined> {
    const found = await readHeadOf(this.inner, key, length);
    if (found) await this.limiter.take(found.head.length);
    return found;
  }
  exists(key: string): Promise<boolean> {
    return this.inner.exists(key);
  }
  list(prefix: string): AsyncIterable<ListedObject> {
    return this.inner.list(prefix);
  }
  delete(keys: string[]): Promise<void> {
    return this.inner.delete(keys);
  }
  ensureReady(): Promise<void> {
    return this.inner.ensureReady();
  }
  describe(): string {
    return `${this.inner.describe()}, at most ${Math.round(this.limiter.bytesPerSecond / 1024)} KiB/s`;
  }
}
