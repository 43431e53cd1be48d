// A worker SIGKILLed inside the recordings step of a restore, and inside its undo: the retries on a new worker keep
// the quarantine copy of every live version, restore the backup's versions, and a rollback puts every live version back.
// The recordings are restored after the control plane serves again; the rollback is forced by a planned recording
// that changes after the plan (the restore refuses to touch it), the last key of the plan so every other one is done.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { QUARANTINE_PREFIX, RESTORE_FAULT_POINTS } from '../../activities/restore-recordings';
import { compareKeys } from '../../src/streams/sorted-cursor';
import { backupResult, startBackup } from '../../src/operations/backup';
import { restoreReport } from '../../src/operations/restore';
import { startApprovedRestore } from '../support/approved-restore';
import { FAULT_POINT_DIR_ENV, FAULT_POINT_ENV } from '../../src/runtime/fault-points';
import type { RestoreReport } from '../../workflows/restore-types';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { CRASH_TEST_TIMEOUTS, startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const EventType = temporal.api.enums.v1.EventType;
const TimeoutType = temporal.api.enums.v1.TimeoutType;

/** Recordings rewritten after the backup: each is both quarantined and restored by a restore. */
const REWRITTEN = 4;
/** Recordings deleted after the backup: restored only. */
const DELETED = 3;

describe('restore recordings after a worker crash', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;
  /** Key -> ETag of the bucket as the backup holds it. */
  let atBackup: Map<string, string>;
  let rewritten: string[];
  let deleted: string[];
  const workers: WorkerProcess[] = [];
  const faultDirs: string[] = [];

  function worker(identity: string, faultPoint?: string): Promise<WorkerProcess> {
    const env: Record<string, string> = {};
    if (faultPoint) {
      const dir = mkdtempSync(join(tmpdir(), 'vaultpam-fault-'));
      faultDirs.push(dir);
      Object.assign(env, { [FAULT_POINT_ENV]: faultPoint, [FAULT_POINT_DIR_ENV]: dir });
    }
    // One key at a time: the kill after the first pair lands before the plan's last key is touched.
    const config = parseConfig({ ...f.config, backup: { ...f.config.backup, concurrency: 1 }, timeouts: CRASH_TEST_TIMEOUTS });
    return startWorkerProcess({ taskQueue: h.taskQueue, config, workflowBundlePath: inject('workflowBundlePath'), identity }, 60_000, env).then((w) => {
      workers.push(w);
      return w;
    });
  }

  /** Key -> ETag of what the bucket holds under `prefix` (the reserved prefix left out unless asked for). */
  async function listing(prefix = ''): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const client = f.deps.recordingsClient('production');
    for await (const o of client.listObjectsV2(f.config.deployment.recordings.bucket, prefix, true) as AsyncIterable<{ name: string; etag: string }>) {
      if (!prefix && o.name.startsWith('.vaultpam-backup/')) continue;
      out.set(prefix ? o.name.slice(prefix.length) : o.name, o.etag.replace(/"/g, ''));
    }
    return out;
  }

  /** The single restore whose quarantine copies are in the bucket (the workflow cannot be queried while no worker runs). */
  async function quarantinedRestoreIds(): Promise<string[]> {
    const ids = new Set<string>();
    for (const key of (await listing(QUARANTINE_PREFIX)).keys()) ids.add(key.split('/')[0]!);
    return [...ids];
  }

  /**
   * The plan's last key, changed behind the restore's back (while no worker runs): the recordings step finishes every
   * other key, then fails on this one with RestoreStateInvalid, and the restore rolls back. Returns its new ETag.
   */
  async function changeLastPlannedKey(planned: string[]): Promise<{ key: string; etag: string }> {
    const key = [...planned].sort(compareKeys).at(-1)!;
    const client = f.deps.recordingsClient('production');
    const bucket = f.config.deployment.recordings.bucket;
    // Content of its own each time (a new ETag), even for a key an earlier test changed the same way.
    const content = Buffer.from(`changed after the restore plan at ${new Date().toISOString()}: ${key}\n`.repeat(30));
    await client.putObject(bucket, key, content, content.length);
    return { key, etag: (await client.statObject(bucket, key)).etag.replace(/"/g, '') };
  }

  /** Key -> ETag without the keys a test leaves aside (the changed key, the smoke test's recording). */
  function without(map: Map<string, string>, ...keys: (string | undefined)[]): Map<string, string> {
    const out = new Map(map);
    for (const key of keys) if (key) out.delete(key);
    return out;
  }

  async function killedWithin(w: WorkerProcess, ms: number, what: string): Promise<void> {
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms));
    const outcome = await Promise.race([w.exited, timer]);
    if (outcome === 'timeout') throw new Error(`the worker was not killed at ${what} within ${ms} ms; stderr: ${w.stderr()}`);
    expect(outcome.signal).toBe('SIGKILL');
  }

  /** The retried attempt of an activity: on which worker, after which timeout. */
  async function lastAttempt(handle: WorkflowHandle, activity: string) {
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && e.activityTaskScheduledEventAttributes?.activityType?.name === activity);
    expect(scheduled).toHaveLength(1);
    const started = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED && String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled[0]!.eventId));
    const completed = events.some((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED && String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled[0]!.eventId));
    return { ...started!.activityTaskStartedEventAttributes!, completed };
  }

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 10, auditEntries: 100, recordings: 24, recordingBytes: 6_000 });
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the recordings change' })))).backupId;
    atBackup = await listing();
    const keys = [...atBackup.keys()].sort();
    expect(keys.length).toBeGreaterThanOrEqual(REWRITTEN + DELETED + 4);
    // After the backup: some recordings rewritten (same key, other content), some deleted, some new.
    const client = f.deps.recordingsClient('production');
    const bucket = f.config.deployment.recordings.bucket;
    rewritten = keys.filter((_, i) => i % 3 === 0).slice(0, REWRITTEN);
    deleted = keys.filter((_, i) => i % 3 === 1).slice(0, DELETED);
    for (const key of rewritten) {
      const content = Buffer.from(`rewritten after the backup: ${key}\n`.repeat(50));
      await client.putObject(bucket, key, content, content.length);
    }
    for (const key of deleted) await client.removeObject(bucket, key);
    await f.seed({ organisations: 0, resources: 1, connectors: 0, auditEntries: 5, recordings: 3, recordingBytes: 4_000 });
  }, 300_000);
  // Each test's workers poll the same task queue: none may outlive its test and take the next one's tasks.
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
  });
  afterAll(async () => {
    for (const dir of faultDirs) rmSync(dir, { recursive: true, force: true });
    await h?.close();
    await f?.destroy();
  });

  /** Every key the restore changes: what differs between the bucket now and the backup. */
  async function plannedKeys(): Promise<string[]> {
    const live = await listing();
    const keys = new Set<string>();
    for (const [key, etag] of live) if (atBackup.get(key) !== etag) keys.add(key);
    for (const key of atBackup.keys()) if (!live.has(key)) keys.add(key);
    return [...keys];
  }

  /** The smoke test's recording: written once the control plane serves again, after the plan, so never the restore's. */
  function smokeKeyOf(report: RestoreReport, live: Map<string, string>): string {
    const key = [...live.keys()].find((k) => k.includes(report.smokeTest!.sessionId));
    expect(key, "the smoke test's recording").toBeDefined();
    return key!;
  }

  it(
    'killed just after a quarantine-and-restore pair: the retry keeps the live version in quarantine, and the rollback puts it back',
    async () => {
      const before = await listing();
      for (const key of rewritten) expect(before.get(key)).not.toBe(atBackup.get(key));
      const added = [...before.keys()].filter((k) => !atBackup.has(k));
      expect(added.length).toBe(3);
      const planned = await plannedKeys();

      const first = await worker('recordings-crash-first', `${RESTORE_FAULT_POINTS.afterQuarantineAndRestore}@1`);
      const handle = await startApprovedRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'recordings crash test', taskQueue: h.taskQueue });
      await killedWithin(first, 240_000, 'the first quarantine-and-restore pair');
      const [restoreId] = await quarantinedRestoreIds();
      expect(restoreId).toBeTruthy();
      const atKill = await listing(`${QUARANTINE_PREFIX}${restoreId}/`);
      expect(atKill.size).toBeGreaterThanOrEqual(1);
      // Killed after the first pair: the last key of the plan is not reached yet (up to `concurrency` pairs run at once).
      const changed = await changeLastPlannedKey(planned);
      expect(atKill.has(changed.key)).toBe(false);

      // The retry runs on a worker that dies when the rollback reaches the recordings: the state between is inspected.
      const second = await worker('recordings-crash-second', RESTORE_FAULT_POINTS.revertStart);
      await killedWithin(second, 240_000, 'the start of the recordings rollback');
      const retried = await lastAttempt(handle, 'restoreRecordings');
      expect(retried.attempt).toBeGreaterThanOrEqual(2);
      expect(retried.identity).toBe('recordings-crash-second');
      expect(retried.lastFailure?.timeoutFailureInfo?.timeoutType).toBe(TimeoutType.TIMEOUT_TYPE_HEARTBEAT);

      const live = await listing();
      const aside = await listing(`${QUARANTINE_PREFIX}${restoreId}/`);
      for (const key of rewritten.filter((k) => k !== changed.key)) {
        // The quarantine copy holds the live version from before the restore; the key holds the backup's version.
        expect(aside.get(key), key).toBe(before.get(key));
        expect(live.get(key), key).toBe(atBackup.get(key));
      }
      for (const key of deleted.filter((k) => k !== changed.key)) expect(live.get(key), key).toBe(atBackup.get(key));
      for (const key of added.filter((k) => k !== changed.key)) {
        expect(aside.get(key), key).toBe(before.get(key));
        expect(live.has(key), key).toBe(false);
      }
      // The changed key was left as the test wrote it, and never copied aside.
      expect(live.get(changed.key)).toBe(changed.etag);
      expect(aside.has(changed.key)).toBe(false);
      console.info(`recordings crash: killed after the first pair with ${atKill.size} quarantine copies; the retry (attempt ${retried.attempt}) ended with ${aside.size}`);

      await worker('recordings-crash-third');
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      const report: RestoreReport = await restoreReport(h.client, handle.workflowId);
      expect(report.status).toBe('rolled-back');
      expect(report.error).toMatch(/changed after the restore plan was made|did not expect/);
      // The control plane served and was smoke-tested before the recordings step.
      expect(report.rtoMs).toBeGreaterThan(0);
      const smokeKey = smokeKeyOf(report, live);
      expect(without(live, changed.key, smokeKey)).toEqual(without(atBackup, changed.key));
      expect(report.rollback!.every((r) => r.ok)).toBe(true);
      const after = await listing();
      expect(without(after, changed.key, smokeKey)).toEqual(without(before, changed.key));
      expect(after.get(changed.key)).toBe(changed.etag);
      expect((await listing(`${QUARANTINE_PREFIX}${restoreId}/`)).size).toBe(0);
    },
    600_000,
  );

  it(
    'killed inside the rollback of the recordings: the retried rollback keeps every live version from before the restore',
    async () => {
      const planned = await plannedKeys();
      // Killed once the plan is journalled, so that a planned key can change before the recordings step.
      const first = await worker('revert-crash-plan', `${RESTORE_FAULT_POINTS.afterPlan}@1`);
      const handle = await startApprovedRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'revert crash test', taskQueue: h.taskQueue });
      await killedWithin(first, 240_000, 'the end of the recordings plan');
      const changed = await changeLastPlannedKey(planned);
      const before = await listing();

      const second = await worker('revert-crash-first', `${RESTORE_FAULT_POINTS.afterPutBack}@2`);
      await killedWithin(second, 300_000, 'the second put-back of the rollback');
      const [restoreId] = await quarantinedRestoreIds();
      // Killed between a put-back and the removal of its quarantine copy: some copies are still there.
      expect((await listing(`${QUARANTINE_PREFIX}${restoreId}/`)).size).toBeGreaterThanOrEqual(1);

      await worker('revert-crash-second');
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      const retried = await lastAttempt(handle, 'revertRecordings');
      expect(retried.attempt).toBeGreaterThanOrEqual(2);
      expect(retried.identity).toBe('revert-crash-second');
      expect(retried.completed).toBe(true);
      const report = await restoreReport(h.client, handle.workflowId);
      expect(report.status).toBe('rolled-back');
      expect(report.error).toMatch(/changed after the restore plan was made|did not expect/);
      expect(report.rollback!.every((r) => r.ok)).toBe(true);
      const after = await listing();
      const smokeKey = smokeKeyOf(report, after);
      expect(without(after, smokeKey)).toEqual(before);
      expect(after.get(changed.key)).toBe(changed.etag);
      expect((await listing(`${QUARANTINE_PREFIX}${restoreId}/`)).size).toBe(0);
    },
    600_000,
  );
});
