// Pins from a workflow's side: a backup it reads is pinned first (activity pinBackup) and unpinned in its finally.
import { CancellationScope, log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PinOperation } from '../src/catalog/pins';

const pinCalls = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 10, nonRetryableErrorTypes: ['BackupNotFound', 'PinInputInvalid'] },
});

/** Pins one backup (by id or time) for the calling run; answers the backup id pinned. */
export async function pinBackup(deployment: string, operation: PinOperation, which: { backupId?: string; at?: string }): Promise<string> {
  return (await pinCalls.pinBackup({ deployment, operation, ...which })).backupId;
}

/** Removes the calling run's pins even while the workflow is being cancelled; a pin left behind lapses when it expires. */
export async function unpinBackups(deployment: string, backupIds: readonly string[]): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    for (const backupId of backupIds) {
      try {
        await pinCalls.unpinBackup({ deployment, backupId });
      } catch (err) {
        log.error('a pin could not be removed; it lapses when it expires', { backupId, error: (err as Error).message });
      }
    }
  });
}
