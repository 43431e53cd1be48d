// Bandwidth limits: a token bucket per location (and per recordings bucket) that every stream through it shares.
import { Transform, type TransformCallback } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';

export interface RateLimiterClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: RateLimiterClock = { now: () => Date.now(), sleep: (ms) => delay(ms) };

/**
 * At most `bytesPerSecond` on average, with bursts of up to one second's worth, shared by every caller: concurrent
 * transfers through one location split its limit between them instead of each taking all of it.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  /** Callers wait in turn, so a large request is not starved by a stream of small ones. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly bytesPerSecond: number,
    private readonly clock: RateLimiterClock = realClock,
  ) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`a rate limit must be a positive number of bytes per second, got ${bytesPerSecond}`);
    this.tokens = bytesPerSecond;
    this.last = clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }

  /** Resolves once `bytes` may pass. */
  take(bytes: number): Promise<void> {
    const turn = this.queue.then(async () => {
      let owed = bytes;
      while (owed > 0) {
        this.refill();
        const portion = Math.min(owed, this.bytesPerSecond);
        if (this.tokens >= portion) {
          this.tokens -= portion;
          owed -= portion;
          continue;
        }
        await this.clock.sleep(Math.ceil(((portion - this.tokens) / this.bytesPerSecond) * 1000));
      }
    });
    this.queue = turn.catch(() => undefined);
    return turn;
  }
}

/** A pass-through that lets bytes on only as fast as `limiter` allows. */
export function throttle(limiter: RateLimiter): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      limiter.take(chunk.length).then(
        () => callback(null, chunk),
        (err: Error) => callback(err),
      );
    },
  });
}
