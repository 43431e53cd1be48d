// The quarterly restore drill: the newest backup restored into staging, verified, smoke-tested, its RTO reported.
import { executeChild, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { restoreWorkflow } from './restore';
import type { RestoreReport } from './restore-types';
import { DEPLOYMENT, OPERATION, STATUS } from './search-attributes';

export interface DrillInput {
  /** Whose backups to drill (production's deployment name). */
  deployment: string;
  /** The staging deployment's name. */
  stagingDeployment: string;
}

export interface DrillReport {
  backupId: string;
  rtoMs: number | undefined;
  verify: RestoreReport['verify'];
  smokeTest: RestoreReport['smokeTest'];
  restoreWorkflowId: string;
}

export async function restoreDrillWorkflow(input: DrillInput): Promise<DrillReport> {
  const restoreWorkflowId = `restore-${input.stagingDeployment}`;
  const report = await executeChild(restoreWorkflow, {
    workflowId: restoreWorkflowId,
    args: [
      {
        deployment: input.deployment,
        target: 'staging',
        targetDeployment: input.stagingDeployment,
        // The newest committed (and so verified) backup at the drill's start.
        at: new Date(workflowInfo().startTime).toISOString(),
        confirmed: true,
        safetySnapshot: false,
        reason: 'restore drill',
        requestedBy: 'drill',
      },
    ],
    typedSearchAttributes: [
      { key: DEPLOYMENT, value: input.stagingDeployment },
      { key: OPERATION, value: 'restore' },
    ],
    staticSummary: `Restore drill of ${input.deployment} into ${input.stagingDeployment}`,
  });
  upsertSearchAttributes([{ key: STATUS, value: 'drill-passed' }]);
  return { backupId: report.backup!.backupId, rtoMs: report.rtoMs, verify: report.verify, smokeTest: report.smokeTest, restoreWorkflowId };
}
