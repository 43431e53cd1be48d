// Recovery of a deployment's cluster as of a moment, in a scratch instance; the instance is left running for the caller.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DiscardScratchInstanceInput, RecoverToMomentInput, ScratchInstance } from '../activities/recover-to-moment';

const recovery = proxyActivities<Activities>({
  startToCloseTimeout: '6h',
  heartbeatTimeout: '60s',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['PointInTimeOutsideWindow', 'PointInTimeNotConfigured', 'InputInvalid'] },
});

export async function recoverToMomentWorkflow(input: RecoverToMomentInput): Promise<ScratchInstance> {
  return recovery.recoverToMoment(input);
}

export async function discardScratchInstanceWorkflow(input: DiscardScratchInstanceInput): Promise<void> {
  await recovery.discardScratchInstance(input);
}
