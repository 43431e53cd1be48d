// Seed step 1: quiesce (maintenance mode pauses write-heavy workloads) and its undo.
import { Context } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import type { Dependencies } from '../src/runtime/dependencies';

export function createQuiesceActivities(deps: Dependencies) {
  return {
    /** Idempotent: entering maintenance mode twice is the same as once. */
    async quiesce(input: { target: TargetName; backupId: string }): Promise<{ startedAt: string }> {
      const startedAt = deps.now().toISOString();
      await deps.controlPlane(input.target).setMaintenance(true, `vaultpam-backup: backup ${input.backupId}`, Context.current().cancellationSignal);
      return { startedAt };
    },

    /** Idempotent compensation; also the normal end of the pause (the dump step calls the same control plane). */
    async unquiesce(input: { target: TargetName; backupId: string }): Promise<void> {
      await deps.controlPlane(input.target).setMaintenance(false, `vaultpam-backup: backup ${input.backupId} finished its pause`);
    },
  };
}
