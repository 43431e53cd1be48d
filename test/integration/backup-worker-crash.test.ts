// A worker SIGKILLed during the recordings copy: a new worker finishes the same workflow, no object is copied twice,
// and the backup verifies at every location.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { readManifest } from '../../src/catalog/catalog';
import { unwrapKey } from '../../src/crypto';
import { encryptedSize } from '../../src/crypto/frame-format';
import { backupResult, startBackup } from '../../src/operations/backup';
import { createDependencies } from '../../src/runtime/dependencies';
import { blobsPrefix, createS3Client, type BackupLocation } from '../../src/storage';
import type { BackupProgress, SyncResult } from '../../workflows/backup-types';
import { STATUS } from '../../workflows/search-attributes';
import { readRecordingsIndex } from '../../src/catalog/recordings-index';
import { verifyChecksums } from '../../activities/verify';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import type { Dependencies } from '../../src/runtime/dependencies';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { stackEnv } from '../support/stack-env';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { CRASH_TEST_TIMEOUTS, startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import type { SyncCheckpoint } from '../../activities/sync';

const EventType = temporal.api.enums.v1.EventType;
const TimeoutType = temporal.api.enums.v1.TimeoutType;


/** Enough recordings that two copies at a time take seconds, so the kill lands mid-copy. */
const RECORDINGS = 600;
const RECORDING_BYTES = 64 * 1024;

describe('backup workflow after a worker crash', () => {
  // Two copies at a time: slow enough to be killed half-way, with a known amount of work done.
  // A sandbox of its own: the recordings this test needs do not weigh on every later backup of the shared one.
  let f: RestoreFixture;
  let config: Config;
  let deps: Dependencies;
  let deployment: string;
  let primaryConfig: Config['locations'][number];
  let h: TemporalHarness;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    f = await restoreFixture();
    config = parseConfig({ ...f.config, backup: { ...f.config.backup, concurrency: 2 }, timeouts: CRASH_TEST_TIMEOUTS });
    deps = createDependencies(config);
    deployment = config.deployment.name;
    primaryConfig = config.locations[0]!;
    if (primaryConfig.kind !== 's3') throw new Error('this test reads LastModified from the S3 primary location of the local stack');
    h = await temporalHarness(config);
    await f.seed({ organisations: 1, usersPerOrg: 1, resources: 1, connectors: 0, auditEntries: 0, recordings: RECORDINGS, recordingBytes: RECORDING_BYTES });
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await h?.close();
    await f?.destroy();
  });

  function worker(identity: string): Promise<WorkerProcess> {
    return startWorkerProcess({ taskQueue: h.taskQueue, config, workflowBundlePath: inject('workflowBundlePath'), identity }).then((w) => {
      workers.push(w);
      return w;
    });
  }

  /** The primary location's blobs with their S3 LastModified: a blob rewritten later gets a new one. */
  async function primaryBlobs(): Promise<Map<string, { size: number; lastModified: number }>> {
    if (primaryConfig.kind !== 's3') throw new Error('unreachable');
    // The location's region is a geographic label, not a signing region: let the client ask the server (as createLocation does).
    const s3 = createS3Client({ ...primaryConfig, region: undefined }, stackEnv().s3.secretKey);
    const root = `${primaryConfig.prefix.replace(/\/+$/, '')}/`;
    const blobs = new Map<string, { size: number; lastModified: number }>();
    for await (const item of deps.locations()[0]!.list(blobsPrefix(deployment))) {
      const stat = await s3.statObject(primaryConfig.bucket, `${root}${item.key}`);
      blobs.set(item.key, { size: stat.size, lastModified: stat.lastModified.getTime() });
    }
    return blobs;
  }

  async function countPrimaryBlobs(): Promise<number> {
    let n = 0;
    for await (const _ of deps.locations()[0]!.list(blobsPrefix(deployment))) n += 1;
    return n;
  }

  async function pendingSync(handle: WorkflowHandle) {
    const { raw } = await handle.describe();
    const pending = (raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'syncRecordings');
    if (!pending) return undefined;
    const payload = pending.heartbeatDetails?.payloads?.[0];
    const checkpoint = payload ? h.client.options.loadedDataConverter.payloadConverter.fromPayload<SyncCheckpoint>(payload) : undefined;
    return { attempt: pending.attempt ?? 0, identity: pending.lastWorkerIdentity ?? '', checkpoint };
  }

  it(
    'resumes the recordings copy on a new worker, copies each object once, and verifies',
    async () => {
      const first = await worker('crash-test-first-worker');
      const handle = await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'worker crash test', requestedBy: 'vitest' });

      // Wait until the copy has heartbeated and is well under way, but not finished.
      const startedAt = Date.now();
      let total: number | undefined;
      let blobsBeforeKill = 0;
      for (;;) {
        if (Date.now() - startedAt > 90_000) throw new Error(`the recordings copy never got under way; worker stderr: ${first.stderr()}`);
        const sync = await pendingSync(handle);
        if (sync?.checkpoint) {
          total ??= (await handle.query<BackupProgress>('progress')).recordings!.objects;
          blobsBeforeKill = await countPrimaryBlobs();
          if (blobsBeforeKill >= total) throw new Error(`the copy of ${total} objects finished before the worker could be killed: seed more recordings`);
          if (blobsBeforeKill >= Math.max(10, Math.floor(total / 4))) break;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      // Let the S3 server settle the requests the dead process left in flight before taking the snapshot.
      await new Promise((resolve) => setTimeout(resolve, 1000));

      const atKill = await primaryBlobs();
      const checkpointAtKill = (await pendingSync(handle))!;
      expect(checkpointAtKill.attempt).toBe(1);
      expect(checkpointAtKill.identity).toBe('crash-test-first-worker');
      const heartbeat = checkpointAtKill.checkpoint!;
      expect(atKill.size).toBeGreaterThanOrEqual(blobsBeforeKill);
      expect(atKill.size).toBeLessThan(total!);
      expect(heartbeat.processed).toBeLessThan(atKill.size);

      const killedAt = Date.now();
      await worker('crash-test-second-worker');
      const result = await backupResult(handle);
      const resumedAfterMs = Date.now() - killedAt;

      // The workflow completed, with every object of the snapshot copied by this backup exactly once.
      const progress = await handle.query<BackupProgress>('progress');
      expect(progress.status).toBe('committed');
      expect((await handle.describe()).typedSearchAttributes.get(STATUS)).toBe('committed');
      expect(result.recordings.objects).toBe(total);
      expect(result.recordings.reusedObjects).toBe(0);
      expect(result.recordings.copiedObjects).toBe(total);
      expect(result.recordings.bytes).toBe(progress.recordings!.bytes);

      // The history: syncRecordings ran twice, the second time on the second worker after a heartbeat timeout.
      const history = await handle.fetchHistory();
      const events = history.events ?? [];
      const scheduled = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && e.activityTaskScheduledEventAttributes?.activityType?.name === 'syncRecordings')!;
      const started = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED && String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled.eventId))!;
      expect(started.activityTaskStartedEventAttributes!.attempt).toBe(2);
      expect(started.activityTaskStartedEventAttributes!.identity).toBe('crash-test-second-worker');
      expect(started.activityTaskStartedEventAttributes!.lastFailure?.timeoutFailureInfo?.timeoutType).toBe(TimeoutType.TIMEOUT_TYPE_HEARTBEAT);
      const completed = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED && String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled.eventId))!;
      const sync = h.client.options.loadedDataConverter.payloadConverter.fromPayload<SyncResult>(completed.activityTaskCompletedEventAttributes!.result!.payloads![0]!);

      // The second attempt skipped what the last heartbeat recorded and found the rest of the killed attempt's blobs
      // by their key check: every blob present at the kill past the checkpoint is a resumed object, not a copy.
      expect(sync.resumedObjects).toBe(atKill.size - heartbeat.processed);
      expect(sync.resumedObjects).toBeGreaterThan(0);
      expect(sync.copiedObjects + sync.resumedObjects).toBe(total);
      expect(sync.copiedObjects - heartbeat.copiedObjects).toBe(total! - atKill.size);
      expect(sync.bytes).toBe(progress.recordings!.bytes);
      expect(sync.copiedBytes).toBe(progress.recordings!.bytes);

      // The manifest exists at both locations, its artifacts verify there, and every index entry's blob is there.
      const locations = deps.locations();
      const manifest = await readManifest(locations[0]!, deployment, result.backupId);
      expect(manifest).toBeDefined();
      for (const location of locations) {
        expect(await readManifest(location, deployment, result.backupId)).toEqual(manifest);
        await verifyChecksums(location, manifest!.artifacts);
      }
      expect(manifest!.recordings.copiedObjects).toBe(total);
      const dataKey = unwrapKey(manifest!.encryption.dataKey, deps.keyRing());
      const expected = new Map<string, number>();
      for await (const entry of readRecordingsIndex(locations[0]!, manifest!.artifacts.recordingsIndex, dataKey)) expected.set(entry.blob, encryptedSize(entry.size));
      expect(expected.size).toBe(total);
      for (const location of locations) await expectBlobs(location, deployment, expected);

      // Copied once: every blob there at the kill is untouched (same LastModified), and nothing else was written.
      const after = await primaryBlobs();
      expect([...after.keys()].sort()).toEqual([...expected.keys()].map((b) => `${blobsPrefix(deployment)}${b}`).sort());
      for (const [key, before] of atKill) {
        expect(before.size, `${key} was stored whole before the kill`).toBe(expected.get(key.slice(blobsPrefix(deployment).length)));
        expect(after.get(key)?.lastModified, `${key} was not written again`).toBe(before.lastModified);
      }
      console.info(`worker crash: killed with ${atKill.size}/${total} blobs stored (heartbeat at ${heartbeat.processed}); finished ${(resumedAfterMs / 1000).toFixed(1)} s later; resumed ${sync.resumedObjects}, copied ${sync.copiedObjects}`);
    },
    180_000,
  );
});

/** Every expected blob is at the location with its encrypted size, and no other blob is. */
async function expectBlobs(location: BackupLocation, deployment: string, expected: Map<string, number>): Promise<void> {
  const found = new Map<string, number>();
  for await (const item of location.list(blobsPrefix(deployment))) found.set(item.key.slice(blobsPrefix(deployment).length), item.size);
  expect(found.size, `blobs at ${location.name}`).toBe(expected.size);
  for (const [blob, size] of expected) expect(found.get(blob), `blob ${blob} at ${location.name}`).toBe(size);
}
