// What the backup activities share: the primary location, the data key of a backup, a bounded task pool.
import { ApplicationFailure } from '@temporalio/activity';
import { loadDataKey } from '../src/catalog/data-key';
import { CryptoError } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import type { BackupLocation } from '../src/storage';

/** The first configured location receives every artifact first; replication copies from it to the others. */
export function primaryLocation(deps: Dependencies): BackupLocation {
  const [primary] = deps.locations();
  if (!primary) throw ApplicationFailure.create({ type: 'LocationsInvalid', message: 'no backup location is configured', nonRetryable: true });
  return primary;
}

export function locationByName(deps: Dependencies, name: string): BackupLocation {
  const location = deps.locations().find((l) => l.name === name);
  if (!location) throw ApplicationFailure.create({ type: 'LocationsInvalid', message: `no location named "${name}" is configured`, nonRetryable: true });
  return location;
}

/** Per set of dependencies (one configuration, one key ring): a key unwrapped under one ring is not another's. */
const dataKeys = new WeakMap<Dependencies, Map<string, Buffer>>();

/** Unwrapped once per worker and backup; never leaves the worker. */
export async function backupDataKey(deps: Dependencies, deployment: string, backupId: string): Promise<Buffer> {
  let cache = dataKeys.get(deps);
  if (!cache) dataKeys.set(deps, (cache = new Map()));
  const cacheKey = `${deployment}/${backupId}`;
  let key = cache.get(cacheKey);
  if (!key) {
    try {
      key = await loadDataKey(deps.locations(), deployment, backupId, deps.keyRing());
    } catch (err) {
      // A missing or wrong master key is a configuration problem: retrying cannot fix it, the operator can.
      if (err instanceof CryptoError) throw ApplicationFailure.create({ type: 'KeyUnavailable', message: err.message, nonRetryable: true });
      throw err;
    }
    if (cache.size > 64) cache.clear();
    cache.set(cacheKey, key);
  }
  return key;
}

/** A bounded pool: at most `limit` tasks run at once; `run` waits for a free slot (back-pressure on the producer). */
export class TaskPool {
  private running = 0;
  private waiters: (() => void)[] = [];
  private failure: unknown;
  private readonly all = new Set<Promise<void>>();
  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.running >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failure) throw this.failure;
    this.running += 1;
    const p = task()
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.running -= 1;
        this.all.delete(p);
        this.waiters.shift()?.();
      });
    this.all.add(p);
  }

  /** Waits for a free slot, runs `task` in it and resolves with its result (errors go to the caller, not the pool). */
  async call<T>(task: () => Promise<T>): Promise<T> {
    while (this.running >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.running += 1;
    try {
      return await task();
    } finally {
      this.running -= 1;
      this.waiters.shift()?.();
    }
  }

  async drain(): Promise<void> {
    while (this.all.size > 0) await Promise.all([...this.all]);
    if (this.failure) throw this.failure;
  }
}
