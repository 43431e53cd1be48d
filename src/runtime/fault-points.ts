// Crash points for tests: a process SIGKILLs itself at a named line when VAULTPAM_FAULT_POINT names it; otherwise a no-op.
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `name` (every time the point is reached) or `name@N` (the N-th time only). Tests only. */
export const FAULT_POINT_ENV = 'VAULTPAM_FAULT_POINT';
/** Where `name@N` counts the times a point was reached, so the count survives the process it kills. */
export const FAULT_POINT_DIR_ENV = 'VAULTPAM_FAULT_POINT_DIR';

interface FaultSpec {
  name: string;
  occurrence: number | undefined;
}

function parseSpec(raw: string): FaultSpec {
  const m = /^(.+)@([1-9]\d*)$/.exec(raw);
  return m ? { name: m[1]!, occurrence: Number(m[2]) } : { name: raw, occurrence: undefined };
}

/** How many times this point was reached so far, this time included (one byte appended per time: atomic enough across retries). */
function countReached(name: string): number {
  const dir = process.env[FAULT_POINT_DIR_ENV];
  if (!dir) throw new Error(`${FAULT_POINT_ENV} names an occurrence (@N): set ${FAULT_POINT_DIR_ENV} to a directory where it is counted`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.count`);
  appendFileSync(file, '.');
  return readFileSync(file).length;
}

/**
 * Marks a line where a crash must leave a state the next attempt can finish from. When the environment names this
 * point, the process is killed here without any cleanup (SIGKILL), as a machine failure would.
 */
export function faultPoint(name: string): void {
  const raw = process.env[FAULT_POINT_ENV];
  if (!raw) return;
  const spec = parseSpec(raw);
  if (spec.name !== name) return;
  if (spec.occurrence !== undefined && countReached(name) !== spec.occurrence) return;
  process.kill(process.pid, 'SIGKILL');
}
