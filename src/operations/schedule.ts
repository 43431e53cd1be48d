// The daily backup as a Temporal Schedule (create, describe, delete); overlaps are skipped, missed runs caught up once.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import { DEPLOYMENT, OPERATION } from '../../workflows/search-attributes';
import type { BackupInput } from '../../workflows/backup-types';

export function scheduleId(deployment: string): string {
  return `backup-schedule-${deployment}`;
}

const CRON = /^(\S+\s+){4}\S+$/;

export async function createBackupSchedule(client: Client, config: Config, options: { cron: string; deep?: boolean; taskQueue?: string; paused?: boolean }): Promise<string> {
  if (!CRON.test(options.cron.trim())) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `--cron "${options.cron}" is not a 5-field cron expression (e.g. "0 2 * * *" for 02:00 every day)`);
  }
  const deployment = config.deployment.name;
  const id = scheduleId(deployment);
  const input: BackupInput = { deployment, target: 'production', requestedBy: 'schedule', reason: 'scheduled daily backup', ...(options.deep ? { deep: true } : {}) };
  try {
    await client.schedule.create({
      scheduleId: id,
      spec: { cronExpressions: [options.cron.trim()] },
      action: {
        type: 'startWorkflow',
        workflowType: 'scheduledBackupWorkflow',
        workflowId: `scheduled-backup-${deployment}`,
        taskQueue: options.taskQueue ?? config.temporal.taskQueue,
        args: [input],
        typedSearchAttributes: [
          { key: DEPLOYMENT, value: deployment },
          { key: OPERATION, value: 'scheduled-backup' },
        ],
        staticSummary: `Scheduled backup of ${deployment}`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
      state: { paused: options.paused ?? false, note: 'created by vaultpam-backup schedule create' },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) {
      throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `schedule ${id} already exists; delete it first (vaultpam-backup schedule delete) to change it`);
    }
    throw err;
  }
  return id;
}

/** The backup schedule, or the schedule named by `id` (the check's). */
export async function describeBackupSchedule(client: Client, config: Config, id = scheduleId(config.deployment.name)) {
  const handle = client.schedule.getHandle(id);
  const d = await handle.describe();
  return {
    scheduleId: d.scheduleId,
    cron: d.spec.calendars?.length ? 'calendar' : undefined,
    paused: d.state.paused,
    nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
    recentRuns: d.info.recentActions.slice(-5).map((a) => ({ at: a.takenAt.toISOString(), workflowId: a.action.workflow.workflowId })),
  };
}

export async function deleteBackupSchedule(client: Client, config: Config): Promise<void> {
  await client.schedule.getHandle(scheduleId(config.deployment.name)).delete();
}

export function drillScheduleId(deployment: string): string {
  return `restore-drill-schedule-${deployment}`;
}

/** The quarterly restore drill (the vendor asks for one every quarter): the newest backup into staging. */
export async function createDrillSchedule(client: Client, config: Config, options: { cron: string; taskQueue?: string }): Promise<string> {
  if (!CRON.test(options.cron.trim())) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `--cron "${options.cron}" is not a 5-field cron expression (e.g. "0 3 1 1,4,7,10 *" for 03:00 on the first day of each quarter)`);
  }
  if (!config.staging) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', 'a restore drill needs a "staging" deployment in the configuration');
  const id = drillScheduleId(config.deployment.name);
  await client.schedule.create({
    scheduleId: id,
    spec: { cronExpressions: [options.cron.trim()] },
    action: {
      type: 'startWorkflow',
      workflowType: 'restoreDrillWorkflow',
      workflowId: `restore-drill-${config.staging.name}`,
      taskQueue: options.taskQueue ?? config.temporal.taskQueue,
      args: [{ deployment: config.deployment.name, stagingDeployment: config.staging.name }],
      typedSearchAttributes: [
        { key: DEPLOYMENT, value: config.staging.name },
        { key: OPERATION, value: 'restore-drill' },
      ],
      staticSummary: `Quarterly restore drill of ${config.deployment.name} into ${config.staging.name}`,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
  });
  return id;
}

export function checkScheduleId(deployment: string): string {
  return `check-schedule-${deployment}`;
}

/**
 * The scheduled repository check. With `readDataSubsetOf` m, each run reads the slice after the last scheduled run's
 * (slice n of m), so m consecutive runs read every blob once; with `repair`, each run repairs what it finds.
 */
export async function createCheckSchedule(client: Client, config: Config, options: { cron: string; readDataSubsetOf?: number; repair?: boolean; taskQueue?: string; paused?: boolean }): Promise<string> {
  if (!CRON.test(options.cron.trim())) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `--cron "${options.cron}" is not a 5-field cron expression (e.g. "0 4 * * *" for 04:00 every day)`);
  }
  const m = options.readDataSubsetOf;
  if (m !== undefined && (!Number.isInteger(m) || m < 1 || m > 100_000)) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `--read-data-subset-of "${m}" must be a whole number from 1 to 100000 (e.g. 7: a seventh of the blobs read each run)`);
  }
  const deployment = config.deployment.name;
  const id = checkScheduleId(deployment);
  try {
    await client.schedule.create({
      scheduleId: id,
      spec: { cronExpressions: [options.cron.trim()] },
      action: {
        type: 'startWorkflow',
        workflowType: 'scheduledCheckWorkflow',
        workflowId: `scheduled-check-${deployment}`,
        taskQueue: options.taskQueue ?? config.temporal.taskQueue,
        args: [{ deployment, ...(m ? { readDataSubsetOf: m } : {}), ...(options.repair ? { repair: true } : {}) }],
        typedSearchAttributes: [
          { key: DEPLOYMENT, value: deployment },
          { key: OPERATION, value: 'scheduled-check' },
        ],
        staticSummary: `Scheduled check of ${deployment}${m ? `, reading 1/${m} of the blobs each run` : ''}`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
      state: { paused: options.paused ?? false, note: 'created by vaultpam-backup schedule create --check' },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) {
      throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `schedule ${id} already exists; delete it first (vaultpam-backup schedule delete --check) to change it`);
    }
    throw err;
  }
  return id;
}

export async function deleteCheckSchedule(client: Client, config: Config): Promise<void> {
  await client.schedule.getHandle(checkScheduleId(config.deployment.name)).delete();
}
