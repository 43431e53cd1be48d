// Master-key rotation as a workflow: under the deployment's lock (no backup, prune or restore runs meanwhile), every
// backup's data key and every restore journal's key rewrapped under the active master key, in every location.
import { patched, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RotationResult } from '../src/catalog/rewrap-data-keys';
import { auditPrincipal, recordAuditQuietly } from './audit-recorder';
import { releaseDeploymentLock, takeDeploymentLock } from './deployment-lock-holder';
import { STATUS } from './search-attributes';

export type { RotationResult };

const transfer = proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 3, nonRetryableErrorTypes: ['KeyRingInvalid'] },
});

export async function rotateKeyWorkflow(input: { deployment: string; requestedBy?: string }): Promise<RotationResult> {
  upsertSearchAttributes([{ key: STATUS, value: 'running' }]);
  try {
    await takeDeploymentLock(input.deployment, 'rotate-key');
  } catch (err) {
    upsertSearchAttributes([{ key: STATUS, value: 'refused' }]);
    throw err;
  }
  try {
    const result = await transfer.rewrapDataKeys({ deployment: input.deployment });
    // Point-in-time protection's keys follow: WAL key epochs and base data keys (no segment is rewritten). Patched: a
    // rotation started by an earlier version replays without this step.
    const pointInTime = patched('point-in-time-keys') ? await transfer.rewrapPointInTimeKeys({ deployment: input.deployment }) : { epochsRewrapped: 0, basesRewrapped: 0 };
    // After the rewrap: from here on entries are sealed under the new key, and older ones verify while the old key stays in the ring.
    await recordAuditQuietly(input.deployment, 'key.rotated', auditPrincipal(input.requestedBy), {}, {
      activeKeyId: result.activeKeyId,
      rewrapped: result.rewrappedCount,
      alreadyCurrent: result.alreadyCurrent,
      journalsRewrapped: result.journalsRewrapped,
      checkpointsRewrapped: result.checkpointsRewrapped,
      connectorExportsRewrapped: result.connectorExportsRewrapped,
      walEpochsRewrapped: pointInTime.epochsRewrapped,
      basesRewrapped: pointInTime.basesRewrapped,
    });
    upsertSearchAttributes([{ key: STATUS, value: 'completed' }]);
    return result;
  } catch (err) {
    upsertSearchAttributes([{ key: STATUS, value: 'failed' }]);
    throw err;
  } finally {
    await releaseDeploymentLock(input.deployment);
  }
}
