// A saga's bookkeeping: calls that all end before any undo runs, and the undo list run newest first on failure.
import { CancellationScope, log } from '@temporalio/workflow';

export interface Compensation {
  name: string;
  run: () => Promise<unknown>;
}

/** Runs the undo steps newest first, even while the workflow is being cancelled; a failing one is logged and the rest still run. */
export async function runCompensations(undo: readonly Compensation[]): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    for (const step of [...undo].reverse()) {
      try {
        await step.run();
      } catch (undoErr) {
        log.error(`compensation "${step.name}" failed`, { error: (undoErr as Error).message });
      }
    }
  });
}

/** Throws the first failure among settled calls (in the order they were made); otherwise returns their values. */
export function valuesOrFirstFailure<T>(settled: readonly PromiseSettledResult<T>[]): T[] {
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * Waits for every call to end, done or failed, before it throws the first failure: an undo must not race a call still
 * writing (a copy would leave its writes behind the cleanup).
 */
export async function allEnded<T>(calls: readonly Promise<T>[]): Promise<T[]> {
  return valuesOrFirstFailure(await Promise.allSettled(calls));
}
