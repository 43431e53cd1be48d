// Runs the preflight workflow for a target and waits for its report (shared by the CLI and the HTTP API).
import type { Client } from '@temporalio/client';
import type { TargetName } from '../config/load';
import type { Config } from '../config/schema';
import type { PreflightReport } from '../../workflows/preflight-types';
import { DEPLOYMENT, OPERATION } from '../../workflows/search-attributes';
import { targetDeployment } from '../config/load';
import { requireWorker, whileWorkerPolls } from './worker-presence';

export interface PreflightOptions {
  /** Pass the recovery-point check when no backup exists yet. @default false */
  allowNoBackup?: boolean;
}

export async function runPreflight(
  client: Client,
  config: Config,
  target: TargetName,
  taskQueue = config.temporal.taskQueue,
  options: PreflightOptions = {},
): Promise<{ workflowId: string; runId: string; report: PreflightReport }> {
  const deployment = targetDeployment(config, target).name;
  await requireWorker(client, taskQueue);
  const workflowId = `preflight-${deployment}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const handle = await client.workflow.start('preflightWorkflow', {
    taskQueue,
    workflowId,
    args: [{ target, deployment, ...(options.allowNoBackup ? { allowNoBackup: true } : {}) }],
    typedSearchAttributes: [
      { key: DEPLOYMENT, value: deployment },
      { key: OPERATION, value: 'preflight' },
    ],
    staticSummary: `Preflight of ${deployment} (${target})`,
    workflowExecutionTimeout: '10 minutes',
  });
  const report = await whileWorkerPolls(client, taskQueue, handle.result() as Promise<PreflightReport>, { workflowId });
  return { workflowId, runId: handle.firstExecutionRunId, report };
}
