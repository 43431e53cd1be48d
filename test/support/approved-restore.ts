// Restores the way a production target needs them: started as one test principal (signed request), approved by
// another (signed approval), both signed with the local stack's approvals key.
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { Principal } from '../../src/auth/principal';
import type { Config } from '../../src/config/schema';
import { confirmRestore, restoreReport, startRestore, type StartRestoreOptions } from '../../src/operations/restore';
import type { RestoreReport } from '../../workflows/restore-types';

export const TEST_REQUESTER: Principal = { id: 'test:requester', roles: ['restorer'], via: 'token' };
export const TEST_APPROVER: Principal = { id: 'test:approver', roles: ['approver'], via: 'token' };
export const SECOND_APPROVER: Principal = { id: 'test:second-approver', roles: ['approver'], via: 'token' };

/** Polls the restore's report until it leaves its first running steps: awaiting confirmation, or ended. */
export async function untilAwaitingOrEnded(client: Client, workflowId: string, timeoutMs = 180_000): Promise<RestoreReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const report = await restoreReport(client, workflowId).catch(() => undefined);
    if (report && report.status !== 'running') return report;
    if (Date.now() > deadline) throw new Error(`restore ${workflowId} neither awaited confirmation nor ended within ${timeoutMs} ms (last: ${report?.status}/${report?.step})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Starts a restore as TEST_REQUESTER and, once it awaits confirmation, approves it as `approver` (accepting the
 * unrecoverable recordings the options name). A restore refused before the prompt is returned as it is.
 */
export async function startApprovedRestore(
  client: Client,
  config: Config,
  options: Omit<StartRestoreOptions, 'principal' | 'confirmed'>,
  approver: Principal = TEST_APPROVER,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const handle = await startRestore(client, config, { ...options, principal: TEST_REQUESTER });
  const waiting = await untilAwaitingOrEnded(client, handle.workflowId);
  if (waiting.status !== 'awaiting-confirmation') return handle;
  await confirmRestore(client, config, handle.workflowId, {
    backupId: waiting.backup!.backupId,
    lossReportDigest: waiting.lossReportDigest!,
    principal: approver,
    ...(options.acceptUnrecoverable !== undefined ? { acceptUnrecoverable: options.acceptUnrecoverable } : {}),
  });
  return handle;
}
