// Starting the repository check (one per deployment at a time, whoever asks) and reading its report; shared by CLI, API and tests.
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import { assertDeploymentUnlocked } from './deployment-lock';
import { rootCauseMessage } from './failure-message';
import { describeReadData, type CheckInput, type CheckReport, type ReadDataScope } from '../../workflows/check-types';
import { DEPLOYMENT, OPERATION } from '../../workflows/search-attributes';

/** One check workflow id per deployment: Temporal refuses a second check (a repair above all) while one runs. */
export function checkWorkflowId(deployment: string): string {
  return `check-${deployment}`;
}

const SUBSET = /^([0-9]{1,6})\/([0-9]{1,6})$/;

/** "n/m" (1 <= n <= m <= 100000) as a read-data slice; anything else is refused, naming the form. */
export function parseReadDataSubset(text: string, what = '--read-data-subset'): ReadDataScope {
  const match = SUBSET.exec(text.trim());
  const slice = match ? Number(match[1]) : NaN;
  const of = match ? Number(match[2]) : NaN;
  if (!match || slice < 1 || of < 1 || slice > of || of > 100_000) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `${what} "${text}" must be n/m with 1 <= n <= m <= 100000 (e.g. 1/7: the first of seven slices)`);
  }
  return { slice, of };
}

export interface StartCheckOptions {
  readData?: ReadDataScope;
  repair?: boolean;
  requestedBy?: string;
  taskQueue?: string;
}

export async function startCheck(client: Client, config: Config, options: StartCheckOptions = {}): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const deployment = config.deployment.name;
  // A repair writes into the repository: it waits for no one and is refused while a backup, restore or rotation holds the lock.
  if (options.repair) await assertDeploymentUnlocked(client, deployment);
  const input: CheckInput = {
    deployment,
    ...(options.readData ? { readData: options.readData } : {}),
    ...(options.repair ? { repair: true } : {}),
    ...(options.requestedBy ? { requestedBy: options.requestedBy } : {}),
  };
  const workflowId = checkWorkflowId(deployment);
  try {
    return await client.workflow.start('checkWorkflow', {
      taskQueue: options.taskQueue ?? config.temporal.taskQueue,
      workflowId,
      args: [input],
      typedSearchAttributes: [
        { key: DEPLOYMENT, value: deployment },
        { key: OPERATION, value: 'check' },
      ],
      staticSummary: `Check of ${deployment}: read data ${describeReadData(options.readData)}${options.repair ? ', repair' : ''}`,
      staticDetails: `Requested by ${options.requestedBy ?? 'unknown'}.`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new VaultpamBackupError('VPB_ERR_CHECK_RUNNING', deployment, `${workflowId}; wait for it (vaultpam-backup check status) or cancel it in the Temporal UI`);
    }
    throw err;
  }
}

export async function checkResult(client: Client, workflowId: string): Promise<CheckReport> {
  try {
    return (await client.workflow.getHandle(workflowId).result()) as CheckReport;
  } catch (err) {
    throw new VaultpamBackupError('VPB_ERR_STEP_FAILED', 'check', rootCauseMessage(err));
  }
}

export type CheckStatus = { workflowId: string; runId: string; status: string; report?: CheckReport; error?: string };

/** The check's state; its report once it has finished. An unknown id is refused with the form ids take. */
export async function checkStatus(client: Client, workflowId: string): Promise<CheckStatus> {
  const handle = client.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `no check "${workflowId}" (check ids look like check-<deployment>)`);
    throw err;
  }
  if (description.type !== 'checkWorkflow') throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `"${workflowId}" is not a check (it is a ${description.type})`);
  const status = description.status.name;
  const base = { workflowId, runId: description.runId, status };
  if (status === 'COMPLETED') return { ...base, report: (await handle.result()) as CheckReport };
  if (status === 'RUNNING') return base;
  return { ...base, error: await handle.result().then(() => undefined, (err: unknown) => rootCauseMessage(err)) };
}
