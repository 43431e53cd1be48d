// A worker SIGKILLed while a recording's blob is being written to both locations at once: a new worker finishes the
// backup, replication finds nothing left to copy, and a read-data check is clean at every location.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { temporal } from '@temporalio/proto';
import { SYNC_FAULT_POINTS } from '../../activities/sync';
import { readManifest } from '../../src/catalog/catalog';
import { readRecordingsIndex } from '../../src/catalog/recordings-index';
import { unwrapKey } from '../../src/crypto';
import { encryptedSize } from '../../src/crypto/frame-format';
import { backupResult, startBackup } from '../../src/operations/backup';
import { checkResult, startCheck } from '../../src/operations/check';
import { createDependencies } from '../../src/runtime/dependencies';
import { FAULT_POINT_DIR_ENV, FAULT_POINT_ENV } from '../../src/runtime/fault-points';
import { blobsPrefix } from '../../src/storage';
import type { ReplicateResult } from '../../workflows/backup-types';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import type { Dependencies } from '../../src/runtime/dependencies';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { CRASH_TEST_TIMEOUTS, startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const EventType = temporal.api.enums.v1.EventType;

/** Recordings in the test's own sandbox: enough that the kill at KILL_AT_CHUNK lands mid-copy. */
const RECORDINGS = 400;
const RECORDING_BYTES = 64 * 1024;
/** The chunk read at which the first worker dies: well into the copy, with uploads to both locations open. */
const KILL_AT_CHUNK = 150;

describe('recordings copy to every location after a worker crash', () => {
  // A sandbox of its own: the recordings this test needs do not weigh on every later backup of the shared one.
  let f: RestoreFixture;
  let config: Config;
  let deps: Dependencies;
  let deployment: string;
  let h: TemporalHarness;
  const workers: WorkerProcess[] = [];
  const faultDir = mkdtempSync(join(tmpdir(), 'vaultpam-fault-'));

  beforeAll(async () => {
    f = await restoreFixture();
    config = parseConfig({ ...f.config, backup: { ...f.config.backup, concurrency: 4 }, timeouts: CRASH_TEST_TIMEOUTS });
    deps = createDependencies(config);
    deployment = config.deployment.name;
    expect(config.locations.length).toBeGreaterThanOrEqual(2);
    h = await temporalHarness(config);
    await f.seed({ organisations: 1, usersPerOrg: 1, resources: 1, connectors: 0, auditEntries: 0, recordings: RECORDINGS, recordingBytes: RECORDING_BYTES });
  }, 120_000);
  afterAll(async () => {
    for (const w of workers) await w.stop();
    rmSync(faultDir, { recursive: true, force: true });
    await h?.close();
    await f?.destroy();
  });

  function worker(identity: string, env: Record<string, string> = {}): Promise<WorkerProcess> {
    return startWorkerProcess({ taskQueue: h.taskQueue, config, workflowBundlePath: inject('workflowBundlePath'), identity }, 60_000, env).then((w) => {
      workers.push(w);
      return w;
    });
  }

  it(
    'killed mid-write: the retry completes every location in the same pass, replicate copies nothing, check --read-data is clean',
    async () => {
      const first = await worker('multi-location-crash-first', { [FAULT_POINT_ENV]: `${SYNC_FAULT_POINTS.midBlobWrite}@${KILL_AT_CHUNK}`, [FAULT_POINT_DIR_ENV]: faultDir });
      const handle = await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'multi-location crash test', requestedBy: 'vitest' });
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 120_000));
      const outcome = await Promise.race([first.exited, timer]);
      if (outcome === 'timeout') throw new Error(`the worker was not killed mid-copy; stderr: ${first.stderr()}`);
      expect(outcome.signal).toBe('SIGKILL');

      // Both locations got part of the copy before the kill: the writes go out together.
      const blobsAtKill = await Promise.all(deps.locations().map(async (l) => {
        let n = 0;
        for await (const _ of l.list(blobsPrefix(deployment))) n += 1;
        return n;
      }));
      for (const n of blobsAtKill) expect(n).toBeGreaterThan(0);

      await worker('multi-location-crash-second');
      const result = await backupResult(handle);

      // The retry wrote what each location lacked itself: replication found every blob in place at every location.
      const events = (await handle.fetchHistory()).events ?? [];
      const replicateIds = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'replicate').map((e) => String(e.eventId)));
      expect(replicateIds.size).toBe(config.locations.length - 1);
      const replicated = events
        .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED && replicateIds.has(String(e.activityTaskCompletedEventAttributes?.scheduledEventId)))
        .map((e) => h.client.options.loadedDataConverter.payloadConverter.fromPayload<ReplicateResult>(e.activityTaskCompletedEventAttributes!.result!.payloads![0]!));
      expect(replicated).toHaveLength(replicateIds.size);
      for (const r of replicated) {
        expect(r.blobsCopied, `blobs replicate had to copy to ${r.location}`).toBe(0);
        // Every blob is this backup's own and the copy wrote each to every location (none left it): none is asked about.
        expect(r.blobsWrittenByCopy).toBe(result.recordings.objects);
        expect(r.blobsPresent).toBe(0);
      }

      // Every blob of the index at every location, with its size, and nothing else under the deployment's blobs.
      const manifest = (await readManifest(deps.locations()[0]!, deployment, result.backupId))!;
      const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
      const expected = new Map<string, number>();
      for await (const entry of readRecordingsIndex(deps.locations()[0]!, manifest.artifacts.recordingsIndex, dataKey)) expected.set(entry.blob, encryptedSize(entry.size));
      expect(expected.size).toBe(result.recordings.objects);
      for (const location of deps.locations()) {
        const found = new Map<string, number>();
        for await (const item of location.list(blobsPrefix(deployment))) found.set(item.key.slice(blobsPrefix(deployment).length), item.size);
        expect(found, `blobs at ${location.name}`).toEqual(expected);
      }

      // Every byte read back and opened, at every location.
      const check = await startCheck(h.client, config, { readData: 'all', requestedBy: 'vitest', taskQueue: h.taskQueue });
      const report = await checkResult(h.client, check.workflowId);
      expect(report.problems).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.locations.sort()).toEqual(config.locations.map((l) => l.name).sort());
      expect(report.blobsRead).toBe(expected.size * config.locations.length);
      for (const o of report.orphans) expect(o.count, `orphans at ${o.location}`).toBe(0);
      console.info(`multi-location crash: killed with ${blobsAtKill.join('/')} blobs stored; ${expected.size} blobs at each location after the retry`);
    },
    300_000,
  );
});
