// Tests of the bandwidth limit: the token bucket's arithmetic on an injected clock, and a throttled location's streams.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readAll } from '../../src/catalog/artifacts';
import { parseConfig } from '../../src/config/load';
import { localStackConfig } from '../../src/config/local-stack';
import { createDependencies } from '../../src/runtime/dependencies';
import { FilesystemLocation } from '../../src/storage';
import { RateLimiter, type RateLimiterClock } from '../../src/storage/rate-limiter';
import { ThrottledLocation } from '../../src/storage/throttled-location';

/** A clock that only moves when the limiter sleeps: the total slept is the time the transfer would take. */
function fakeClock(): RateLimiterClock & { slept: number } {
  let now = 0;
  const clock = {
    slept: 0,
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
      clock.slept += ms;
    },
  };
  return clock;
}

describe('rate limiter', () => {
  it('lets a second of burst through at once, then the rate', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter(1000, clock);
    await limiter.take(1000);
    expect(clock.slept).toBe(0);
    await limiter.take(3000);
    expect(clock.slept).toBe(3000);
  });

  it('splits one limit between concurrent callers, in turn', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter(500, clock);
    const order: string[] = [];
    await Promise.all([limiter.take(1000).then(() => order.push('a')), limiter.take(1000).then(() => order.push('b'))]);
    expect(order).toEqual(['a', 'b']);
    expect(clock.slept).toBe(3000);
  });

  it('refuses a limit that is not positive', () => {
    expect(() => new RateLimiter(0)).toThrow(/positive/);
  });
});

describe('throttled location', () => {
  it('passes every byte through unchanged, at the limit, both ways', async () => {
    const clock = fakeClock();
    const inner = new FilesystemLocation({ name: 'slow', region: 'here', kind: 'filesystem', path: await mkdtemp(join(tmpdir(), 'throttle-')), prefix: 'p' });
    const location = new ThrottledLocation(inner, new RateLimiter(10_000, clock));
    const body = Buffer.alloc(50_000, 7);
    await location.put('a/b', Readable.from([body.subarray(0, 20_000), body.subarray(20_000)]), body.length);
    expect(clock.slept).toBe(40_000 / 10);
    expect((await readAll(await location.get('a/b'))).equals(body)).toBe(true);
    expect(clock.slept).toBe(90_000 / 10);
    expect(location.describe()).toContain('at most 10 KiB/s');
  });

  it('is built from the configuration, which refuses a memory budget too small to hold a part per upload', () => {
    const base = localStackConfig({ ...process.env, VAULTPAM_STACK_DIR: '/nonexistent-stack' });
    const filesystem = base.locations.filter((l) => l.kind === 'filesystem');
    const limited = createDependencies(parseConfig({ ...base, locations: filesystem.map((l) => ({ ...l, maxBytesPerSecond: 1_000_000 })) })).locations();
    expect(limited[0]).toBeInstanceOf(ThrottledLocation);
    expect(createDependencies(parseConfig({ ...base, locations: filesystem })).locations()[0]).toBeInstanceOf(FilesystemLocation);
    expect(() => parseConfig({ ...base, backup: { ...base.backup, memoryBudgetMiB: 8 } })).toThrow(/memoryBudgetMiB/);
  });
});
