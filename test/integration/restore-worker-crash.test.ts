// A worker SIGKILLed while pg_restore runs: a new worker retries the database step, and the restore ends consistent,
// either completed and verified or rolled back to exactly the state before it, with no restored copy left behind.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { backupResult, startBackup } from '../../src/operations/backup';
import { restoreReport } from '../../src/operations/restore';
import { startApprovedRestore } from '../support/approved-restore';
import { dropDatabase, withClient } from '../../src/postgres';
import type { RestoreReport } from '../../workflows/restore-types';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { CRASH_TEST_TIMEOUTS, startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const EventType = temporal.api.enums.v1.EventType;
const TimeoutType = temporal.api.enums.v1.TimeoutType;

/** restoreDatabase's heartbeat (activities/restore.ts). */
interface RestoreHeartbeat {
  phase: string;
  bytes: number;
  attempt: number;
}

/**
 * Enough audit entries that pg_restore takes seconds (the data and then the indexes), so the kill lands inside it.
 * The seeder writes them in one INSERT ... SELECT (about 2 s per 300 000 here); pg_restore then takes about 6 s.
 */
const AUDIT_ENTRIES = 1_000_000;
/** After the first pg_restore heartbeat: deep enough into the restore that the dead worker leaves a partial copy. */
const KILL_DELAY_MS = 1_500;

describe('restore workflow after a worker crash during pg_restore', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;
  const workers: WorkerProcess[] = [];
  const setAside: string[] = [];

  function worker(identity: string): Promise<WorkerProcess> {
    return startWorkerProcess({ taskQueue: h.taskQueue, config: parseConfig({ ...f.config, timeouts: CRASH_TEST_TIMEOUTS }), workflowBundlePath: inject('workflowBundlePath'), identity }).then((w) => {
      workers.push(w);
      return w;
    });
  }

  /** Databases this deployment's full restores create beside the live one: `<live>_r_*` and `<live>_pre_*`. */
  async function sideDatabases(kind: '_r_' | '_pre_'): Promise<string[]> {
    const pg = f.config.deployment.postgres;
    const rows = await withClient(
      pg,
      f.deps.postgresPassword('production'),
      async (c) => (await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname', [`${pg.database}${kind}`])).rows,
      { database: 'postgres' },
    );
    return rows.map((r) => r.datname);
  }

  async function pendingRestoreDatabase(handle: WorkflowHandle) {
    const { raw } = await handle.describe();
    const pending = (raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'restoreDatabase');
    if (!pending) return undefined;
    const payload = pending.heartbeatDetails?.payloads?.[0];
    const heartbeat = payload ? h.client.options.loadedDataConverter.payloadConverter.fromPayload<RestoreHeartbeat>(payload) : undefined;
    return { attempt: pending.attempt ?? 0, identity: pending.lastWorkerIdentity ?? '', heartbeat };
  }

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    const seedStarted = Date.now();
    await f.seed({ resources: 20, auditEntries: AUDIT_ENTRIES, recordings: 10, recordingBytes: 4_000 });
    console.info(`seeded ${AUDIT_ENTRIES} audit entries in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`);
    const w = await worker('restore-crash-backup-worker');
    const backupStarted = Date.now();
    backupId = (await backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the crash test' }))).backupId;
    console.info(`backup ${backupId} in ${((Date.now() - backupStarted) / 1000).toFixed(1)} s`);
    await w.stop();
  }, 300_000);
  afterAll(async () => {
    for (const w of workers) await w.stop();
    // The pre-restore database a completed restore keeps for cleanup is this test's to drop.
    if (f) {
      for (const name of [...setAside, ...(await sideDatabases('_pre_').catch(() => []))]) {
        await dropDatabase(f.config.deployment.postgres, f.deps.postgresPassword('production'), name, { ifExists: true, force: true }).catch(() => undefined);
      }
    }
    await h?.close();
    await f?.destroy();
  });

  it(
    'retries the database step on a new worker and ends completed or rolled back, with no restored copy left',
    async () => {
      // Operators kept working after the backup: a rollback must keep this, a completed restore replaces it.
      await f.seed({ organisations: 0, resources: 2, connectors: 1, auditEntries: 20, recordings: 3, recordingBytes: 4_000 });
      const before = await f.fingerprint();
      const first = await worker('restore-crash-first-worker');
      const handle = await startApprovedRestore(h.client, f.config, { backupId, reason: 'worker crash test', taskQueue: h.taskQueue });

      // Wait until pg_restore has been fed (a heartbeat with its bytes), then a little longer, and kill the worker.
      const startedAt = Date.now();
      let seen: Awaited<ReturnType<typeof pendingRestoreDatabase>>;
      for (;;) {
        if (Date.now() - startedAt > 120_000) throw new Error(`restoreDatabase never heartbeated pg_restore progress; worker stderr: ${first.stderr()}`);
        seen = await pendingRestoreDatabase(handle).catch(() => undefined);
        if (seen?.heartbeat?.phase.startsWith('pg_restore') && seen.heartbeat.bytes > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, KILL_DELAY_MS));
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      const killedAt = Date.now();

      // The kill landed inside the first attempt: it is still pending, on the dead worker.
      const atKill = await pendingRestoreDatabase(handle);
      if (!atKill) throw new Error(`restoreDatabase finished within ${KILL_DELAY_MS} ms of its first heartbeat: seed more audit entries`);
      expect(atKill.attempt).toBe(1);
      expect(atKill.identity).toBe('restore-crash-first-worker');
      const restoredCopiesAtKill = await sideDatabases('_r_');

      await worker('restore-crash-second-worker');
      let report: RestoreReport;
      let outcome: 'completed' | 'rolled-back';
      try {
        report = (await handle.result()) as RestoreReport;
        outcome = 'completed';
      } catch (err) {
        expect(err).toBeInstanceOf(WorkflowFailedError);
        report = await restoreReport(h.client, handle.workflowId);
        outcome = 'rolled-back';
      }
      const endedAfterMs = Date.now() - killedAt;
      if (report.previousDatabase) setAside.push(report.previousDatabase);
      console.info(
        `restore worker crash: killed ${KILL_DELAY_MS} ms after the first pg_restore heartbeat (${seen!.heartbeat!.bytes} bytes fed; restored copies at the kill: ${restoredCopiesAtKill.join(', ') || 'none'}); ` +
          `the workflow ended ${outcome} ${(endedAfterMs / 1000).toFixed(1)} s later${report.error ? ` (${report.error})` : ''}`,
      );

      expect(report.status).toBe(outcome);
      if (outcome === 'completed') {
        expect(report.verify!.found).toEqual(report.verify!.expected);
        expect(report.smokeTest!.sessionId).toBeTruthy();
        const after = await f.fingerprint();
        for (const table of ['resources', 'safes', 'credentials'] as const) expect(after.counts[table]).toBe(report.verify!.expected[table]);
      } else {
        expect(report.rollback!.every((r) => r.ok)).toBe(true);
        expect(await f.fingerprint()).toEqual(before);
      }

      // restoreDatabase ran at least twice: its last attempt, on the second worker, followed a heartbeat timeout.
      const events = (await handle.fetchHistory()).events ?? [];
      const scheduled = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && e.activityTaskScheduledEventAttributes?.activityType?.name === 'restoreDatabase')!;
      expect(scheduled).toBeDefined();
      const started = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED && String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled.eventId))!;
      expect(started.activityTaskStartedEventAttributes!.attempt).toBeGreaterThanOrEqual(2);
      expect(started.activityTaskStartedEventAttributes!.identity).toBe('restore-crash-second-worker');
      expect(started.activityTaskStartedEventAttributes!.lastFailure?.timeoutFailureInfo?.timeoutType).toBe(TimeoutType.TIMEOUT_TYPE_HEARTBEAT);
      const closed = events.find(
        (e) =>
          (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED && String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled.eventId)) ||
          (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED && String(e.activityTaskFailedEventAttributes?.scheduledEventId) === String(scheduled.eventId)),
      )!;
      const seconds = (e: typeof closed) => Number(e.eventTime?.seconds ?? 0) + (e.eventTime?.nanos ?? 0) / 1e9;
      console.info(`restoreDatabase attempt ${started.activityTaskStartedEventAttributes!.attempt} took ${(seconds(closed) - seconds(started)).toFixed(1)} s (the kill came ${KILL_DELAY_MS} ms into attempt 1)`);

      // No restored copy is left, whichever way it ended.
      expect(await sideDatabases('_r_')).toEqual([]);
      expect((await f.deps.controlPlane('production').health()).status).toBe('ok');
    },
    300_000,
  );
});
