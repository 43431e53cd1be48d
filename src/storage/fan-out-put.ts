// One stream written to several locations in one pass: the slowest location paces the reading, a failing one drops out.
import { PassThrough, type Readable } from 'node:stream';
import type { BackupLocation } from './backup-location';

/** Bytes a branch buffers ahead of its upload; each upload holds at most its own part buffer beyond this. */
const BRANCH_BUFFER = 64 * 1024;

export interface FanOutPutResult {
  /** Locations that hold the object whole. */
  written: string[];
  /** Locations whose write failed, with why; nothing is left under the key there (the put contract). */
  failed: { location: string; error: Error }[];
}

interface Branch {
  location: BackupLocation;
  stream: PassThrough;
  failure?: Error;
  settled: Promise<void>;
}

/** Resolves once `branch` takes more (drained) or can take nothing more (closed or failed). */
function room(branch: Branch): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      branch.stream.off('drain', done);
      branch.stream.off('close', done);
      resolve();
    };
    branch.stream.on('drain', done);
    branch.stream.on('close', done);
  });
}

/**
 * Puts `body` under `key` at every one of `locations`, reading it once. Each chunk goes to every location still
 * writing before the next is read, so memory stays at one branch buffer plus one upload part per location. A location
 * whose write fails is dropped and the others go on; a failure of `body` itself fails every write and is thrown.
 */
export async function putToEach(locations: readonly BackupLocation[], key: string, body: Readable, size?: number): Promise<FanOutPutResult> {
  const branches: Branch[] = locations.map((location) => {
    const stream = new PassThrough({ highWaterMark: BRANCH_BUFFER });
    // The put reports the failure; this keeps a late stream error from going unhandled once the put has settled.
    stream.on('error', () => undefined);
    const branch: Branch = { location, stream, settled: Promise.resolve() };
    branch.settled = location.put(key, stream, size).then(
      () => undefined,
      (err: unknown) => {
        branch.failure ??= err instanceof Error ? err : new Error(String(err));
        stream.destroy();
      },
    );
    return branch;
  });
  const live = () => branches.filter((b) => !b.failure && !b.stream.destroyed);

  let sourceFailure: Error | undefined;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const open = live();
      if (open.length === 0) break;
      const full = open.filter((b) => !b.stream.write(chunk));
      if (full.length) await Promise.all(full.map(room));
    }
  } catch (err) {
    sourceFailure = err instanceof Error ? err : new Error(String(err));
  }
  if (sourceFailure || live().length === 0) body.destroy();
  for (const branch of branches) {
    if (sourceFailure) branch.stream.destroy(sourceFailure);
    else if (!branch.stream.destroyed) branch.stream.end();
  }
  await Promise.all(branches.map((b) => b.settled));
  if (sourceFailure) throw sourceFailure;
  return {
    written: branches.filter((b) => !b.failure).map((b) => b.location.name),
    failed: branches.filter((b) => b.failure).map((b) => ({ location: b.location.name, error: b.failure! })),
  };
}
