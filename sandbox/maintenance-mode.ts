// Maintenance mode: the flag that refuses writes, persisted outside the database, and the gate writes pass.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/** `stateDir/maintenance.json`; also the answer of GET /admin/maintenance. */
export const maintenanceStateSchema = z.object({
  enabled: z.boolean(),
  /** Why the current state was set, as given by whoever set it. */
  reason: z.string().nullable(),
  /** When the current state was set; null when it never was. */
  since: z.iso.datetime().nullable(),
});
export type MaintenanceState = z.infer<typeof maintenanceStateSchema>;

export class MaintenanceStateError extends Error {
  readonly code = 'MAINTENANCE_STATE_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'MaintenanceStateError';
  }
}

export const MAINTENANCE_FILE = 'maintenance.json';

/**
 * The flag lives in a file, not in the database: the database is what gets dumped and restored, and a
 * restore must neither bring back an old flag nor lose the current one. It survives a process restart.
 *
 * Writes enter through `tryEnterWrite()`. Enabling waits for the writes already inside to finish, so once
 * `enable()` resolves no write can land in the database until maintenance is disabled: that is what makes
 * a dump taken afterwards a consistent point.
 */
export class MaintenanceMode {
  #state: MaintenanceState;
  #inFlight = 0;
  #drainWaiters: Array<() => void> = [];
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly file: string,
    state: MaintenanceState,
  ) {
    this.#state = state;
  }

  static async load(stateDir: string): Promise<MaintenanceMode> {
    const file = join(stateDir, MAINTENANCE_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return new MaintenanceMode(file, { enabled: false, reason: null, since: null });
      }
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const state = maintenanceStateSchema.safeParse(parsed);
    // Refusing to start beats guessing: guessing "off" could let writes into a deployment being restored.
    if (!state.success) {
      throw new MaintenanceStateError(
        `${file} is not a valid maintenance state (expected {"enabled": boolean, "reason": string|null, "since": ISO time|null}); fix or delete it`,
      );
    }
    return new MaintenanceMode(file, state.data);
  }

  get state(): MaintenanceState {
    return { ...this.#state };
  }

  get enabled(): boolean {
    return this.#state.enabled;
  }

  get writesInFlight(): number {
    return this.#inFlight;
  }

  /**
   * Persists the new state, then (when enabling) waits up to `drainTimeoutMs` for writes already admitted.
   * Resolves to false when writes were still running at the deadline; the flag stays set either way.
   */
  async set(enabled: boolean, reason: string | null, now: Date, drainTimeoutMs: number): Promise<{ state: MaintenanceState; drained: boolean }> {
    const next: MaintenanceState = { enabled, reason, since: now.toISOString() };
    // Serialised so that two toggles racing cannot leave the file and the memory disagreeing.
    const persisted = this.#queue.then(async () => {
      await this.#persist(next);
      this.#state = next;
    });
    this.#queue = persisted.catch(() => undefined);
    await persisted;
    const drained = enabled ? await this.#drain(drainTimeoutMs) : true;
    return { state: this.state, drained };
  }

  /** Admits a write unless maintenance is on; every admitted write must call `leaveWrite()` once. */
  tryEnterWrite(): boolean {
    if (this.#state.enabled) return false;
    this.#inFlight += 1;
    return true;
  }

  leaveWrite(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (this.#inFlight === 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  async #drain(timeoutMs: number): Promise<boolean> {
    if (this.#inFlight === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.#drainWaiters = this.#drainWaiters.filter((wake) => wake !== onDrained);
        resolve(false);
      }, timeoutMs);
      const onDrained = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#drainWaiters.push(onDrained);
    });
  }

  async #persist(state: MaintenanceState): Promise<void> {
    await mkdir(join(this.file, '..'), { recursive: true });
    const temporary = `${this.file}.${process.pid}.tmp`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(state, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // Rename is atomic: a crash leaves the old state or the new one, never half a file.
    await rename(temporary, this.file);
  }
}
