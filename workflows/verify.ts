// Verifies a committed backup at every location that holds it: checksums, pg_restore --list, blobs; deep once.
import { upsertSearchAttributes } from '@temporalio/workflow';
import { explainFailure } from '../src/errors/failure-explanation';
import { configuredActivities } from './activity-policies';
import { auditPrincipal, recordAuditQuietly } from './audit-recorder';
import { pinBackup, unpinBackups } from './backup-pins';
import { BACKUP_ID, STATUS } from './search-attributes';

const nonRetryableErrorTypes = ['BackupCorrupt', 'BackupNotFound'];

export interface VerifyReport {
  backupId: string;
  deployment: string;
  ok: boolean;
  locations: { name: string; ok: boolean; level?: 'standard' | 'deep'; blobsChecked?: number; blobsRead?: number; problem?: string }[];
}

export async function verifyWorkflow(input: { deployment: string; backupId: string; deep?: boolean; requestedBy?: string }): Promise<VerifyReport> {
  upsertSearchAttributes([{ key: BACKUP_ID, value: input.backupId }, { key: STATUS, value: 'running' }]);
  // Pinned before it is read, so retention keeps it until this verify ends.
  await pinBackup(input.deployment, 'verify', { backupId: input.backupId });
  try {
    return await verifyPinned(input);
  } finally {
    await unpinBackups(input.deployment, [input.backupId]);
  }
}

async function verifyPinned(input: { deployment: string; backupId: string; deep?: boolean; requestedBy?: string }): Promise<VerifyReport> {
  const { quick, transfer, timeouts } = await configuredActivities(nonRetryableErrorTypes);
  const backup = await quick.describeBackup(input);
  const holders = backup.locations.filter((l) => !l.problem);
  const results = await Promise.all(
    backup.locations.map(async (l): Promise<VerifyReport['locations'][number]> => {
      if (l.problem) return { name: l.name, ok: false, problem: l.problem };
      try {
        const r = await transfer.verifyBackup({
          deployment: input.deployment,
          backupId: input.backupId,
          target: 'production',
          location: l.name,
          artifacts: backup.artifacts,
          rowCounts: backup.rowCounts,
          // An operator's verify of one backup reads every blob it names, at every location.
          blobs: 'all',
          readData: 'all',
          // A deep verify restores the dump once, from the first location holding it.
          deep: (input.deep ?? false) && l.name === holders[0]?.name,
        });
        return { name: l.name, ok: true, level: r.level, blobsChecked: r.blobsChecked, blobsRead: r.blobsRead };
      } catch (err) {
        return { name: l.name, ok: false, problem: explainFailure(err, { timeouts }) };
      }
    }),
  );
  const ok = results.every((r) => r.ok);
  upsertSearchAttributes([{ key: STATUS, value: ok ? 'verified' : 'corrupt' }]);
  await recordAuditQuietly(input.deployment, 'verify.completed', auditPrincipal(input.requestedBy), { backupId: input.backupId }, {
    ok,
    deep: input.deep ?? false,
    failedAt: results.filter((r) => !r.ok).map((r) => r.name),
  });
  return { backupId: input.backupId, deployment: input.deployment, ok, locations: results };
}
