// The recordings copy split into shards: several workers share one backup, and the assembled index is the listing.
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { readManifest } from '../../src/catalog/catalog';
import { readRecordingsIndex } from '../../src/catalog/recordings-index';
import { unwrapKey } from '../../src/crypto';
import { backupResult, startBackup } from '../../src/operations/backup';
import { createDependencies } from '../../src/runtime/dependencies';
import { backupPrefix } from '../../src/storage';
import { createWorker } from '../../src/temporal/worker';
import { compareKeys } from '../../src/streams/sorted-cursor';
import { isolatedConfig, seedSandbox } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const EventType = temporal.api.enums.v1.EventType;

describe('sharded recordings copy', () => {
  const config = isolatedConfig((base) => ({ backup: { ...base.backup, objectsPerShard: 8, maxShards: 4 }, worker: { ...base.worker, shardsAtOnce: 1 } }));
  const deps = createDependencies(config);
  let h: TemporalHarness;

  beforeAll(async () => {
    h = await temporalHarness(config);
    await seedSandbox('production', { resources: 1, auditEntries: 5, recordings: 30, recordingBytes: 2_000 });
  });
  afterAll(async () => h?.close());

  it('runs each shard as an activity any worker takes, and assembles the index in listing order', async () => {
    // Two workers, each taking one shard at a time (worker.shardsAtOnce): the shards must be shared between them.
    const workers = await Promise.all(
      ['shard-worker-a', 'shard-worker-b'].map((identity) =>
        createWorker({ config, deps, taskQueue: h.taskQueue, workflowBundlePath: inject('workflowBundlePath'), options: { identity, shutdownGraceTime: '2 seconds' } }),
      ),
    );
    let handle;
    let result;
    try {
      const run = async () => {
        handle = await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'shards test' });
        return backupResult(handle);
      };
      result = await workers[0]!.worker.runUntil(workers[1]!.worker.runUntil(run()));
    } finally {
      for (const w of workers) await w.connection.close();
    }

    const history = await h.client.workflow.getHandle(handle!.workflowId).fetchHistory();
    const events = history.events ?? [];
    const shardEvents = events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && e.activityTaskScheduledEventAttributes?.activityType?.name === 'syncRecordings');
    expect(shardEvents.length).toBe(4);
    const shardIds = new Set(shardEvents.map((e) => String(e.eventId)));
    const identities = new Set(
      events
        .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED && shardIds.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
        .map((e) => e.activityTaskStartedEventAttributes!.identity),
    );
    expect(identities).toEqual(new Set(['shard-worker-a', 'shard-worker-b']));
    // Shards come from a task queue of their own, and no worker ran two of them at once.
    for (const e of shardEvents) expect(e.activityTaskScheduledEventAttributes!.taskQueue!.name).toBe(`${h.taskQueue}-shards`);
    const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
    const spans = events
      .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED && shardIds.has(String(e.activityTaskCompletedEventAttributes?.scheduledEventId)))
      .map((done) => {
        const started = events.find((e) => String(e.eventId) === String(done.activityTaskCompletedEventAttributes!.startedEventId))!;
        return { identity: started.activityTaskStartedEventAttributes!.identity, from: ms(started.eventTime), to: ms(done.eventTime) };
      });
    expect(spans).toHaveLength(4);
    for (const a of spans) for (const b of spans) if (a !== b && a.identity === b.identity) expect(a.to <= b.from || b.to <= a.from, `${a.identity} ran two shards at once`).toBe(true);

    // The index is the listing, entry for entry, in the bucket's key order; the shards' parts are gone.
    const primary = deps.locations()[0]!;
    const manifest = (await readManifest(primary, config.deployment.name, result!.backupId))!;
    const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
    const keys: string[] = [];
    for await (const e of readRecordingsIndex(primary, manifest.artifacts.recordingsIndex, dataKey)) keys.push(e.key);
    expect(keys.length).toBe(result!.recordings.objects);
    expect(new Set(keys).size).toBe(keys.length);
    expect([...keys].sort(compareKeys)).toEqual(keys);
    const left: string[] = [];
    for await (const item of primary.list(backupPrefix(config.deployment.name, result!.backupId))) left.push(item.key.slice(item.key.lastIndexOf('/') + 1));
    expect(left.filter((name) => name.startsWith('recordings.index.part-'))).toEqual([]);
    expect(result!.recordings.copiedObjects).toBe(result!.recordings.objects);
  });
});
