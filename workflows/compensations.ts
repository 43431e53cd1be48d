// A saga's undo list: each step that changed something registers how to take it back; on failure they run newest first.
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
