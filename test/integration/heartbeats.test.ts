// Heartbeats through silent phases: a restore whose index build outlasts the heartbeat timeout many times over
// completes on its first attempt (restore and deep verify), listDump reports while its input stalls, and a worker
// lost in such a phase fails the step with a message naming the activity, its last phase and the setting to tune.
import { Readable } from 'node:stream';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { backupResult, startBackup } from '../../src/operations/backup';
import { startApprovedRestore } from '../support/approved-restore';
import { dropDatabase, dumpDatabase, listDump, withClient, type ToolProgress } from '../../src/postgres';
import type { RestoreReport } from '../../workflows/restore-types';
import type { VerifyReport } from '../../workflows/verify';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const EventType = temporal.api.enums.v1.EventType;

/** The workers' heartbeat timeout: a few seconds, so that a silent phase of ~12 s would fail it three times over. */
const HEARTBEAT_TIMEOUT_MS = 4000;
/**
 * Rows of the probe table and the sleep per row of its index expression: pg_restore rebuilds that index after the
 * last byte of its input, in silence, for about ROWS x SLEEP (12 s here).
 */
const PROBE_ROWS = 3000;
const PROBE_SLEEP_SECONDS = 0.004;
const SILENT_PHASE_MS = PROBE_ROWS * PROBE_SLEEP_SECONDS * 1000;

type Heartbeat = Partial<ToolProgress> & Record<string, unknown>;

describe('heartbeats through silent phases', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;
  /** The worker configuration of these tests: the fixture's deployment, a 4 s heartbeat timeout. */
  let quickToNotice: Config;
  const workers: WorkerProcess[] = [];

  /** Every heartbeat of `activity` seen while `handle` runs, polled from the server (what an operator sees). */
  function watchHeartbeats(handle: WorkflowHandle, activity: string): { stop(): Promise<Heartbeat[]> } {
    const seen: Heartbeat[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const described = await handle.describe().catch(() => undefined);
        for (const pending of described?.raw.pendingActivities ?? []) {
          if (pending.activityType?.name !== activity) continue;
          const payload = pending.heartbeatDetails?.payloads?.[0];
          if (payload) seen.push(h.client.options.loadedDataConverter.payloadConverter.fromPayload<Heartbeat>(payload));
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return seen;
      },
    };
  }

  /** Each scheduled run of `activity` in the history: the attempt that closed it, how, and how long that attempt ran. */
  async function activityRuns(handle: WorkflowHandle, activity: string) {
    const events = (await handle.fetchHistory()).events ?? [];
    const seconds = (e: (typeof events)[number]) => Number(e.eventTime?.seconds ?? 0) + (e.eventTime?.nanos ?? 0) / 1e9;
    return events
      .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && e.activityTaskScheduledEventAttributes?.activityType?.name === activity)
      .map((scheduled) => {
        const id = String(scheduled.eventId);
        const started = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED && String(e.activityTaskStartedEventAttributes?.scheduledEventId) === id);
        const completed = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED && String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === id);
        const timedOut = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT && String(e.activityTaskTimedOutEventAttributes?.scheduledEventId) === id);
        return {
          attempt: started?.activityTaskStartedEventAttributes?.attempt ?? 0,
          heartbeatTimeoutSeconds: Number(scheduled.activityTaskScheduledEventAttributes?.heartbeatTimeout?.seconds ?? 0),
          outcome: completed ? 'completed' : timedOut ? 'timed out' : 'other',
          seconds: started && completed ? seconds(completed) - seconds(started) : undefined,
        };
      });
  }

  function startVerify(deep: boolean): Promise<WorkflowHandle> {
    return h.client.workflow.start('verifyWorkflow', {
      taskQueue: h.taskQueue,
      workflowId: `verify-${f.config.deployment.name}-${backupId}-${Date.now().toString(36)}`,
      args: [{ deployment: f.config.deployment.name, backupId, deep }],
    });
  }

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    quickToNotice = parseConfig({ ...f.config, timeouts: { heartbeat: HEARTBEAT_TIMEOUT_MS } });
    await f.seed({ resources: 5, auditEntries: 50, recordings: 4, recordingBytes: 2_000 });
    // A slow expression index in this deployment's own database: building it takes ~12 s of server time and no I/O.
    const started = Date.now();
    await withClient(f.config.deployment.postgres, f.deps.postgresPassword('production'), async (c) => {
      await c.query(`CREATE FUNCTION public.heartbeat_probe_key(i integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN PERFORM pg_catalog.pg_sleep(${PROBE_SLEEP_SECONDS}); RETURN i; END $$`);
      await c.query('CREATE TABLE public.heartbeat_probe (i integer NOT NULL)');
      await c.query('INSERT INTO public.heartbeat_probe SELECT generate_series(1, $1)', [PROBE_ROWS]);
      await c.query('CREATE INDEX heartbeat_probe_slow ON public.heartbeat_probe (public.heartbeat_probe_key(i))');
    });
    console.info(`the probe index took ${((Date.now() - started) / 1000).toFixed(1)} s to build`);
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'heartbeat tests' })))).backupId;
  }, 300_000);

  afterAll(async () => {
    for (const w of workers) await w.stop();
    if (f) {
      // A deep verify whose worker was killed leaves its scratch database (and the orphaned pg_restore in it).
      const scratch = `vpb_verify_${backupId.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`.slice(0, 63);
      await dropDatabase(f.config.deployment.postgres, f.deps.postgresPassword('production'), scratch, { ifExists: true, force: true }).catch(() => undefined);
    }
    await h?.close();
    await f?.destroy();
  });

  it('listDump keeps reporting while its input stalls', async () => {
    const pg = f.config.deployment.postgres;
    const dump = dumpDatabase({ config: pg, password: f.deps.postgresPassword('production') });
    const chunks: Buffer[] = [];
    for await (const chunk of dump.stream) chunks.push(chunk as Buffer);
    await dump.done;
    const archive = Buffer.concat(chunks);
    // A source that delivers the first half, then nothing for 3.5 s (a stalled download), then the rest.
    const half = Math.floor(archive.length / 2);
    const source = Readable.from(
      (async function* () {
        yield archive.subarray(0, half);
        await new Promise((r) => setTimeout(r, 3500));
        yield archive.subarray(half);
      })(),
    );
    const reports: ToolProgress[] = [];
    const listing = await listDump(source, { config: pg, onProgress: (p) => reports.push(p) });
    expect(listing.tables).toContain('public.heartbeat_probe');
    expect(listing.bytes).toBe(archive.length);
    const duringStall = reports.filter((r) => r.silentSeconds >= 2);
    expect(duringStall.length).toBeGreaterThanOrEqual(2);
    expect(duringStall[0]!.phase).toMatch(/^pg_restore --list: /);
    expect(duringStall[0]!.bytes).toBe(half);
    expect(reports.at(-1)!.bytes).toBe(archive.length);
  });

  it('a deep verify whose restore builds an index in silence for 3x the heartbeat timeout completes on its first attempt', async () => {
    const { report, heartbeats, runs } = await h.withWorker(
      async () => {
        const handle = await startVerify(true);
        const watch = watchHeartbeats(handle, 'verifyBackup');
        const report = (await handle.result()) as VerifyReport;
        return { report, heartbeats: await watch.stop(), runs: await activityRuns(handle, 'verifyBackup') };
      },
      {},
      quickToNotice,
    );
    expect(report.ok).toBe(true);
    expect(report.locations[0]!.level).toBe('deep');
    expect(runs.every((r) => r.heartbeatTimeoutSeconds === HEARTBEAT_TIMEOUT_MS / 1000)).toBe(true);
    expect(runs.map((r) => [r.attempt, r.outcome])).toEqual(runs.map(() => [1, 'completed']));
    const deep = Math.max(...runs.map((r) => r.seconds ?? 0));
    expect(deep * 1000).toBeGreaterThan(SILENT_PHASE_MS);
    // The server saw the phase while pg_restore was silent for longer than the heartbeat timeout.
    const building = heartbeats.filter((b) => b.phase === 'pg_restore: building indexes' && b.deep === true);
    expect(building.length).toBeGreaterThan(0);
    expect(Math.max(...building.map((b) => b.silentSeconds ?? 0)) * 1000).toBeGreaterThan(HEARTBEAT_TIMEOUT_MS);
    console.info(`deep verify: verifyBackup ran ${deep.toFixed(1)} s on attempt 1; longest silence reported ${Math.max(...building.map((b) => b.silentSeconds ?? 0))} s`);
  });

  it('a restore whose index build outlasts the heartbeat timeout 3x completes restoreDatabase on its first attempt', async () => {
    const { report, heartbeats, runs } = await h.withWorker(
      async () => {
        const handle = await startApprovedRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'heartbeat test', taskQueue: h.taskQueue });
        const watch = watchHeartbeats(handle, 'restoreDatabase');
        const report = (await handle.result()) as RestoreReport;
        return { report, heartbeats: await watch.stop(), runs: await activityRuns(handle, 'restoreDatabase') };
      },
      {},
      quickToNotice,
    );
    expect(report.status).toBe('completed');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ attempt: 1, outcome: 'completed', heartbeatTimeoutSeconds: HEARTBEAT_TIMEOUT_MS / 1000 });
    expect(runs[0]!.seconds! * 1000).toBeGreaterThan(SILENT_PHASE_MS);
    const building = heartbeats.filter((b) => b.phase === 'pg_restore: building indexes');
    expect(building.length).toBeGreaterThan(0);
    expect(Math.max(...building.map((b) => b.silentSeconds ?? 0)) * 1000).toBeGreaterThan(HEARTBEAT_TIMEOUT_MS);
    expect(building.every((b) => b.attempt === 1 && (b.bytes ?? 0) > 0)).toBe(true);
    console.info(`restore: restoreDatabase ran ${runs[0]!.seconds!.toFixed(1)} s on attempt 1; longest silence reported ${Math.max(...building.map((b) => b.silentSeconds ?? 0))} s`);
    // The restored database still has the probe and its index: the silent phase was the real work.
    const indexes = await withClient(f.config.deployment.postgres, f.deps.postgresPassword('production'), async (c) => (await c.query(`SELECT 1 FROM pg_indexes WHERE indexname = 'heartbeat_probe_slow'`)).rowCount);
    expect(indexes).toBe(1);
  });

  it('a worker lost during the silent phase fails the step with the activity, its last phase and the setting to tune', async () => {
    // One attempt only, so the heartbeat timeout reaches the workflow instead of starting the step again.
    const oneAttempt = parseConfig({ ...f.config, timeouts: { heartbeat: HEARTBEAT_TIMEOUT_MS, transferAttempts: 1 } });
    const first = await startWorkerProcess({ taskQueue: h.taskQueue, config: oneAttempt, workflowBundlePath: inject('workflowBundlePath'), identity: 'heartbeat-test-doomed-worker' });
    workers.push(first);
    const handle = await startVerify(true);
    const watch = watchHeartbeats(handle, 'verifyBackup');
    const deadline = Date.now() + 120_000;
    for (;;) {
      const described = await handle.describe();
      const pending = (described.raw.pendingActivities ?? []).find((a) => {
        const payload = a.heartbeatDetails?.payloads?.[0];
        return payload && h.client.options.loadedDataConverter.payloadConverter.fromPayload<Heartbeat>(payload).phase === 'pg_restore: building indexes';
      });
      if (pending) break;
      if (Date.now() > deadline) throw new Error(`the deep verify never reached its index build; worker stderr: ${first.stderr()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    const report = await h.withWorker(async () => (await handle.result()) as VerifyReport, {}, oneAttempt);
    await watch.stop();
    expect(report.ok).toBe(false);
    const problem = report.locations[0]!.problem ?? '';
    console.info(`the verify's report after the worker was lost: ${problem}`);
    expect(problem).toMatch(/^activity verifyBackup sent no heartbeat for longer than 4 s \(timeouts\.heartbeat\) on its last allowed attempt \(timeouts\.transferAttempts: 1\); /);
    expect(problem).toMatch(/its last report was phase "pg_restore: building indexes" \([\d.]+ [KM]?i?B, [\d.]+ s elapsed, silent for [\d.]+ s, deep true\)/);
    expect(problem).toMatch(/raise timeouts\.heartbeat in the worker's configuration \(now 4 s\)/);
    const runs = await activityRuns(handle, 'verifyBackup');
    expect(runs.some((r) => r.outcome === 'timed out')).toBe(true);
  });
});
