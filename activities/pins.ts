// Pinning: a workflow that reads a backup (restore, verify, drill, check) names it in a pin first, so retention keeps
// it until the workflow's finally removes the pin (or the pin expires).
import { ApplicationFailure, log } from '@temporalio/activity';
import { findBackupAt, listBackups, readManifest } from '../src/catalog/catalog';
import { makePin, removePin, writePin, type PinOperation } from '../src/catalog/pins';
import type { Dependencies } from '../src/runtime/dependencies';
import { callingRun } from './deployment-lock';

export function createPinActivities(deps: Dependencies) {
  return {
    /**
     * Pins a backup (by id, or the newest at or before `at`) for the calling workflow run, then checks that its
     * manifest still exists: a prune that ran before the pin was written is caught here, not halfway through a read.
     */
    async pinBackup(input: { deployment: string; operation: PinOperation; backupId?: string; at?: string; ttlMs?: number }): Promise<{ backupId: string; locations: string[] }> {
      const { workflowId, runId } = callingRun();
      const locations = deps.locations();
      let backupId = input.backupId;
      if (!backupId && input.at) {
        const at = new Date(input.at);
        if (Number.isNaN(at.getTime())) {
          throw ApplicationFailure.create({ type: 'PinInputInvalid', nonRetryable: true, message: `"${input.at}" is not a time (use ISO 8601, e.g. 2026-11-27T02:00:00Z)` });
        }
        backupId = findBackupAt(await listBackups(locations, input.deployment), at)?.backupId;
        if (!backupId) throw ApplicationFailure.create({ type: 'BackupNotFound', nonRetryable: true, message: `no committed backup of ${input.deployment} was taken at or before ${input.at}` });
      }
      if (!backupId) throw ApplicationFailure.create({ type: 'PinInputInvalid', nonRetryable: true, message: 'a pin needs a backup id or a time' });

      const pin = makePin({ backupId, holder: { workflowId, runId }, operation: input.operation, now: deps.now(), ...(input.ttlMs ? { ttlMs: input.ttlMs } : {}) });
      const { written, failed } = await writePin(locations, input.deployment, pin);
      if (failed.length) log.warn('the pin could not be written everywhere; the locations that took it protect the backup', { backupId, failed });

      const holders: string[] = [];
      for (const location of locations) {
        try {
          if (await readManifest(location, input.deployment, backupId)) holders.push(location.name);
        } catch {
          // An unreadable manifest is for the reader to report; here only presence matters.
        }
      }
      if (holders.length === 0) {
        await removePin(locations, input.deployment, backupId, workflowId);
        throw ApplicationFailure.create({
          type: 'BackupNotFound',
          nonRetryable: true,
          message: `no location holds a manifest of backup ${backupId} of ${input.deployment} (list them with: vaultpam-backup backups list)`,
        });
      }
      return { backupId, locations: written };
    },

    /** Removes the calling run's pin of a backup everywhere; idempotent, and never fails the workflow's cleanup. */
    async unpinBackup(input: { deployment: string; backupId: string }): Promise<{ failed: string[] }> {
      const { workflowId } = callingRun();
      const { failed } = await removePin(deps.locations(), input.deployment, input.backupId, workflowId);
      if (failed.length) log.warn('a pin could not be removed everywhere; it lapses when it expires', { backupId: input.backupId, failed });
      return { failed: failed.map((f) => f.location) };
    },
  };
}
