// The worker's memory for upload buffers (backup.memoryBudgetMiB): every S3 part buffer is drawn from it and returned to it.

/**
 * Buffers for uploads, counted against one limit per worker process. Each upload waits for the buffer it needs to make
 * progress at all (`take`: one part, or the whole object when it is smaller); the part size is fitted so that
 * `backup.concurrency` uploads per S3 location hold half the limit that way, so they wait only when more copies run in
 * one worker than that (several shards taken at once). A second buffer, which lets an upload fill one part while the
 * previous one is on the wire, is granted only while the limit has room (`tryTake`, never waits), so a busy worker
 * degrades to one part at a time instead of growing.
 *
 * Waiting uploads are served in the order they asked, and a recording written to several S3 locations asks for its
 * buffers all at once (one `put` per location, started together): so whoever holds a buffer either holds all it
 * needs or is first in line, and every wait ends. A wait that lasts `maxWaitMs` ends with a buffer past the limit
 * (counted in `overrunCount`), so a copy never stalls long enough to miss its heartbeats.
 *
 * Part buffers are reused while uploads run, so their memory does not wait for the garbage collector; once no upload
 * holds any, the free ones are dropped and the worker returns to its size at rest.
 */
/** Buffers smaller than this (whole small objects) go back to the allocator instead of being kept for reuse. */
const REUSED_MIN_BYTES = 1024 * 1024;

/** How long an upload waits for its first buffer at most (well inside the 30 s heartbeat timeout of the copies). */
const DEFAULT_MAX_WAIT_MS = 10_000;

export class TransferBudget {
  private held = 0;
  private peak = 0;
  private readonly free: Buffer[] = [];
  private freeBytes = 0;
  private readonly queue: { bytes: number; resolve: (buffer: Buffer) => void; timer: NodeJS.Timeout }[] = [];
  private overruns = 0;

  /**
   * @param limitBytes the most handed out in total while no wait has run out; `Infinity` for no limit (tools, tests).
   * @param maxWaitMs how long an upload waits for its first buffer before it is granted one past the limit: a copy
   * whose uploads all wait sends no bytes, so its activity would stop heartbeating (progress is its bytes).
   */
  constructor(
    readonly limitBytes: number,
    private readonly maxWaitMs = DEFAULT_MAX_WAIT_MS,
  ) {
    if (!(limitBytes > 0)) throw new RangeError(`a transfer budget must be positive, got ${limitBytes}`);
  }

  /** Bytes held by uploads now. */
  get bytesHeld(): number {
    return this.held;
  }

  /** The most bytes held at once since this budget was made (the benchmark and tests read it). */
  get peakBytesHeld(): number {
    return this.peak;
  }

  /** The buffer an upload cannot do without: granted in turn, once the limit has room for it. */
  take(bytes: number): Promise<Buffer> {
    if (this.queue.length === 0 && this.fits(bytes)) return Promise.resolve(this.grant(bytes));
    return new Promise((resolve) => {
      const waiter = {
        bytes,
        resolve,
        timer: setTimeout(() => {
          this.queue.splice(this.queue.indexOf(waiter), 1);
          this.overruns += 1;
          resolve(this.grant(bytes));
        }, this.maxWaitMs),
      };
      this.queue.push(waiter);
    });
  }

  /** Buffers granted past the limit because their wait ran out. */
  get overrunCount(): number {
    return this.overruns;
  }

  /** An extra buffer, granted only while the budget has room for it and no upload waits. */
  tryTake(bytes: number): Buffer | undefined {
    return this.queue.length === 0 && this.fits(bytes) ? this.grant(bytes) : undefined;
  }

  /** A request larger than the whole limit is granted alone, so it cannot wait forever. */
  private fits(bytes: number): boolean {
    return this.held + bytes <= this.limitBytes || this.held === 0;
  }

  private serveQueue(): void {
    for (let next = this.queue[0]; next && this.fits(next.bytes); next = this.queue[0]) {
      this.queue.shift();
      clearTimeout(next.timer);
      next.resolve(this.grant(next.bytes));
    }
  }

  /** Returns a buffer from `take` or `tryTake`; its contents are not read again by the caller. */
  give(buffer: Buffer): void {
    this.held = Math.max(0, this.held - buffer.length);
    if (this.held === 0 && this.queue.length === 0) {
      this.free.length = 0;
      this.freeBytes = 0;
    } else if (buffer.length >= REUSED_MIN_BYTES && this.held + this.freeBytes + buffer.length <= this.limitBytes) {
      // Whole-object buffers of small recordings are all of different sizes: only part buffers are worth keeping.
      this.free.push(buffer);
      this.freeBytes += buffer.length;
    }
    this.serveQueue();
  }

  private grant(bytes: number): Buffer {
    const reused = this.free.findIndex((buffer) => buffer.length === bytes);
    let buffer: Buffer;
    if (reused >= 0) {
      buffer = this.free.splice(reused, 1)[0]!;
      this.freeBytes -= bytes;
    } else {
      buffer = Buffer.allocUnsafeSlow(bytes);
    }
    this.held += bytes;
    this.peak = Math.max(this.peak, this.held);
    return buffer;
  }
}
