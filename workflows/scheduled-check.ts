// What the check Schedule starts: the check as a child with the deployment's fixed check workflow id (so it never
// overlaps a check started by hand), reading the slice after the last scheduled check's.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, executeChild, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { checkWorkflow } from './check';
import type { ScheduledCheckResult } from './check-types';
import { DEPLOYMENT, OPERATION } from './search-attributes';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 3 } });

/** The same id as src/operations/check.ts gives a check started by hand. */
function checkWorkflowId(deployment: string): string {
  return `check-${deployment}`;
}

/** `readDataSubsetOf`: m, to read slice n of m with n rotating over consecutive runs; absent or 0: no data read. */
export async function scheduledCheckWorkflow(input: { deployment: string; readDataSubsetOf?: number; repair?: boolean }): Promise<ScheduledCheckResult> {
  const readData = input.readDataSubsetOf ? await quick.nextScheduledSlice({ deployment: input.deployment, of: input.readDataSubsetOf }) : undefined;
  const workflowId = checkWorkflowId(input.deployment);
  try {
    const report = await executeChild(checkWorkflow, {
      workflowId,
      args: [{ deployment: input.deployment, scheduled: true, requestedBy: 'schedule', ...(readData ? { readData } : {}), ...(input.repair ? { repair: true } : {}) }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: DEPLOYMENT, value: input.deployment },
        { key: OPERATION, value: 'check' },
      ],
      staticSummary: `Scheduled check of ${input.deployment}${readData ? `, reading slice ${readData.slice}/${readData.of}` : ''}`,
    });
    return { started: true, report };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return { started: false, reason: `check workflow ${workflowId} was already running; this scheduled run was skipped` };
    }
    throw err;
  }
}
