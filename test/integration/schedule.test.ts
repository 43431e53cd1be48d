// The daily backup as a Temporal Schedule: created, triggered, its run backs up through the fixed backup workflow id;
// a bad cron expression is refused before anything is created.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/catalog';
import { createBackupSchedule, createDrillSchedule, deleteBackupSchedule, describeBackupSchedule, drillScheduleId, scheduleId } from '../../src/operations/schedule';
import { parseConfig } from '../../src/config/load';
import { createDependencies } from '../../src/runtime/dependencies';
import type { ScheduledBackupResult } from '../../workflows/scheduled-backup';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

describe('backup schedule', () => {
  const config = isolatedConfig();
  let h: TemporalHarness;
  beforeAll(async () => {
    h = await temporalHarness(config);
  });
  afterAll(async () => {
    await deleteBackupSchedule(h.client, config).catch(() => undefined);
    await h.client.schedule.getHandle(drillScheduleId(config.deployment.name)).delete().catch(() => undefined);
    await h?.close();
  });

  it('refuses a malformed cron expression and creates nothing', async () => {
    await expect(createBackupSchedule(h.client, config, { cron: 'every day at 2', taskQueue: h.taskQueue })).rejects.toThrow(/not a 5-field cron expression/);
    await expect(h.client.schedule.getHandle(scheduleId(config.deployment.name)).describe()).rejects.toThrow();
  });

  it('runs a backup when triggered, through the backup workflow id shared with the API and the CLI', async () => {
    const id = await createBackupSchedule(h.client, config, { cron: '0 2 * * *', taskQueue: h.taskQueue, paused: true });
    expect(id).toBe(`backup-schedule-${config.deployment.name}`);
    const described = await describeBackupSchedule(h.client, config);
    expect(described.paused).toBe(true);
    expect(described.nextRuns.length).toBeGreaterThan(0);

    await h.client.schedule.getHandle(id).trigger();
    const result = await h.withWorker(async () => {
      for (;;) {
        const recent = (await describeBackupSchedule(h.client, config)).recentRuns;
        if (recent.length > 0) return (await h.client.workflow.getHandle(recent[0]!.workflowId).result()) as ScheduledBackupResult;
        await new Promise((r) => setTimeout(r, 250));
      }
    });
    expect(result.started).toBe(true);
    const backups = await listBackups(createDependencies(config).locations(), config.deployment.name);
    expect(backups).toHaveLength(1);
    expect(backups[0]!.manifest.requestedBy).toBe('schedule');
    expect(backups[0]!.manifest.workflowId).toBe(`backup-${config.deployment.name}`);
  });

  it('schedules the quarterly restore drill into staging, and refuses one without a staging deployment', async () => {
    const { staging: _staging, ...withoutStaging } = config;
    await expect(createDrillSchedule(h.client, parseConfig(withoutStaging), { cron: '0 3 1 1,4,7,10 *', taskQueue: h.taskQueue })).rejects.toThrow(/needs a "staging" deployment/);
    const id = await createDrillSchedule(h.client, config, { cron: '0 3 1 1,4,7,10 *', taskQueue: h.taskQueue });
    const d = await h.client.schedule.getHandle(id).describe();
    expect(d.action.type).toBe('startWorkflow');
    expect((d.action as { workflowType: string }).workflowType).toBe('restoreDrillWorkflow');
    const next = d.info.nextActionTimes[0]!;
    expect([0, 3, 6, 9]).toContain(next.getUTCMonth());
    expect(next.getUTCDate()).toBe(1);
  });
});
