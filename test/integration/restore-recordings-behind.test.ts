// A full restore serves again before its recordings are back: the plan, made while stopped, leaves the smoke test's
// new recording alone; a recordings step that fails after the restart still rolls the deployment back to before.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { QUARANTINE_PREFIX, RESTORE_FAULT_POINTS } from '../../activities/restore-recordings';
import { backupResult, startBackup } from '../../src/operations/backup';
import { restoreReport } from '../../src/operations/restore';
import { startApprovedRestore } from '../support/approved-restore';
import { FAULT_POINT_DIR_ENV, FAULT_POINT_ENV } from '../../src/runtime/fault-points';
import type { RestoreReport } from '../../workflows/restore-types';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const EventType = temporal.api.enums.v1.EventType;

describe('restore: control plane first, recordings behind it', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;
  /** Key -> ETag of the bucket as the backup holds it. */
  let atBackup: Map<string, string>;
  const workers: WorkerProcess[] = [];
  const faultDirs: string[] = [];

  function worker(identity: string, faultPoint?: string): Promise<WorkerProcess> {
    const env: Record<string, string> = {};
    if (faultPoint) {
      const dir = mkdtempSync(join(tmpdir(), 'vaultpam-fault-'));
      faultDirs.push(dir);
      Object.assign(env, { [FAULT_POINT_ENV]: faultPoint, [FAULT_POINT_DIR_ENV]: dir });
    }
    return startWorkerProcess({ taskQueue: h.taskQueue, config: f.config, workflowBundlePath: inject('workflowBundlePath'), identity }, 60_000, env).then((w) => {
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

  /** The order in which the workflow scheduled its activities. */
  async function scheduled(workflowId: string): Promise<string[]> {
    const events = (await h.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    return events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name!);
  }

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 10, auditEntries: 100, recordings: 24, recordingBytes: 6_000 });
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the recordings change' })))).backupId;
    atBackup = await listing();
  }, 300_000);
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
  });
  afterAll(async () => {
    for (const dir of faultDirs) rmSync(dir, { recursive: true, force: true });
    await h?.close();
    await f?.destroy();
  });

  it(
    'a recordings step failing after the restart: stop again, revert, swap back, start; the deployment is as before',
    async () => {
      // After the backup: recordings rewritten, deleted and added, and more rows; the restore changes all of it.
      const client = f.deps.recordingsClient('production');
      const bucket = f.config.deployment.recordings.bucket;
      const keys = [...atBackup.keys()].sort();
      const rewritten = keys.filter((_, i) => i % 4 === 0).slice(0, 4);
      const deleted = keys.filter((_, i) => i % 4 === 1).slice(0, 3);
      for (const key of rewritten) {
        const content = Buffer.from(`rewritten after the backup: ${key}\n`.repeat(40));
        await client.putObject(bucket, key, content, content.length);
      }
      for (const key of deleted) await client.removeObject(bucket, key);
      await f.seed({ organisations: 0, resources: 2, connectors: 0, auditEntries: 10, recordings: 3, recordingBytes: 4_000 });
      const before = await f.fingerprint();

      // The first worker dies once the plan is journalled: the database is swapped in, the control plane stopped.
      const first = await worker('behind-first', `${RESTORE_FAULT_POINTS.afterPlan}@1`);
      const handle = await startApprovedRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'recordings behind test', taskQueue: h.taskQueue });
      const outcome = await Promise.race([first.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 240_000))]);
      if (outcome === 'timeout') throw new Error(`the worker was not killed after the recordings plan; stderr: ${first.stderr()}`);
      expect(outcome.signal).toBe('SIGKILL');

      // Meanwhile a planned recording changes again: the restore refuses to touch it once it gets there, after the restart.
      const changed = rewritten[rewritten.length - 1]!;
      const content = Buffer.from(`changed once more after the plan: ${changed}\n`.repeat(30));
      await client.putObject(bucket, changed, content, content.length);
      const changedEtag = (await client.statObject(bucket, changed)).etag.replace(/"/g, '');

      await worker('behind-second');
      const failure = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const report: RestoreReport = await restoreReport(h.client, handle.workflowId);
      expect(report.status).toBe('rolled-back');
      expect(report.error).toMatch(/changed after the restore plan was made/);
      // The control plane served and passed its smoke test before the recordings step began.
      expect(report.rtoMs).toBeGreaterThan(0);
      expect(report.smokeTest?.sessionId).toBeTruthy();
      expect(report.recordingsCompleteMs).toBeUndefined();
      expect(report.recordingsProgress?.state).toBe('restoring');
      const order = await scheduled(handle.workflowId);
      expect(order.indexOf('smokeTest')).toBeGreaterThan(order.indexOf('planRecordingsRestore'));
      expect(order.indexOf('restoreRecordings')).toBeGreaterThan(order.indexOf('smokeTest'));
      expect(report.rollback!.every((r) => r.ok)).toBe(true);
      expect(report.rollback!.map((r) => r.step)).toEqual([
        're-import the previous connectors',
        'stop the control plane again',
        'put quarantined recordings back',
        'swap the previous database back',
        'start the control plane',
      ]);

      // As before the restore: the same rows, connectors and recordings, except the recording changed by the test
      // itself and the smoke test's own recording, both left where they were written.
      const after = await f.fingerprint();
      expect(after.counts).toEqual(before.counts);
      expect(after.checksums).toEqual(before.checksums);
      expect(after.connectors).toEqual(before.connectors);
      const smokeKey = [...(await listing()).keys()].find((k) => k.includes(report.smokeTest!.sessionId));
      expect(smokeKey, "the smoke test's recording").toBeDefined();
      const others = (objects: string[]) => objects.filter((o) => !o.startsWith(`${changed} `) && !o.startsWith(`${smokeKey} `));
      expect(others(after.objects)).toEqual(others(before.objects));
      expect((await listing()).get(changed)).toBe(changedEtag);
      expect((await listing(`${QUARANTINE_PREFIX}${report.restoreId}/`)).size).toBe(0);
      expect((await f.deps.controlPlane('production').health()).status).toBe('ok');
    },
    600_000,
  );

  it(
    "completes: serves first, restores recordings behind, and leaves the smoke test's new recording alone",
    async () => {
      await worker('behind-complete');
      const handle = await startApprovedRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'recordings behind, complete', taskQueue: h.taskQueue });
      const report = (await handle.result()) as RestoreReport;
      expect(report.status).toBe('completed');
      expect(report.rtoMs).toBeGreaterThan(0);
      expect(report.recordingsCompleteMs).toBeGreaterThanOrEqual(report.rtoMs!);
      expect(report.recordingsProgress).toMatchObject({ state: 'complete' });
      const live = await listing();
      const smokeKey = [...live.keys()].find((k) => k.includes(report.smokeTest!.sessionId));
      expect(smokeKey, "the smoke test's recording stays at its key").toBeDefined();
      expect([...(await listing(`${QUARANTINE_PREFIX}${report.restoreId}/`)).keys()].some((k) => k.includes(report.smokeTest!.sessionId))).toBe(false);
      // Every recording of the backup is back with its ETag; besides them, only what was written after the plan.
      for (const [key, etag] of atBackup) expect(live.get(key), key).toBe(etag);
      const extra = [...live.keys()].filter((k) => !atBackup.has(k));
      expect(extra).toEqual([smokeKey]);
      expect(report.recordings!.restored + report.recordings!.unchanged).toBe(atBackup.size);
    },
    600_000,
  );
});
