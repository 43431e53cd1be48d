// A backup whose replication hits a failing location: it fails at "replicate", leaves maintenance mode, commits no
// manifest and leaves nothing behind anywhere; and a configuration with one region is refused before any pause.
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { listBackups, readManifest } from '../../src/catalog/catalog';
import type { Config } from '../../src/config/schema';
import { backupResult, startBackup } from '../../src/operations/backup';
import { createDependencies, type Dependencies } from '../../src/runtime/dependencies';
import { backupPrefix, blobsPrefix, type BackupLocation } from '../../src/storage';
import type { ControlPlane } from '../../src/vaultpam/control-plane';
import type { ReplicateResult } from '../../workflows/backup-types';
import { BACKUP_ID, STATUS } from '../../workflows/search-attributes';
import { ensureRecordings, isolatedConfig, seedSandbox } from '../support/backup-fixture';
import { CountingLocation } from '../support/counting-location';
import { FailingLocation } from '../support/failing-location';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

async function keysUnder(location: BackupLocation, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of location.list(prefix)) keys.push(item.key);
  return keys;
}

/** The BackupFailed failure the workflow ended with. */
async function backupFailure(handle: WorkflowHandle): Promise<ApplicationFailure> {
  const error = await backupResult(handle).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  const cause = (error as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect((cause as ApplicationFailure).type).toBe('BackupFailed');
  return cause as ApplicationFailure;
}

/** Every message along a failure's cause chain, joined: where an activity's own error ends up. */
function causeMessages(error: Error): string {
  const messages: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) messages.push(e.message);
  return messages.join(' <- ');
}

/** The real control plane, with every maintenance change recorded. */
function observedControlPlane(real: ControlPlane, changes: boolean[]): ControlPlane {
  return {
    ...real,
    async setMaintenance(enabled, reason, signal) {
      changes.push(enabled);
      return real.setMaintenance(enabled, reason, signal);
    },
  };
}

/** Three locations in three regions; the third, a second S3 location (same bucket, own prefix), is the one that fails. */
function threeRegionConfig(): Config {
  return isolatedConfig((base) => {
    const s3 = base.locations.find((l) => l.kind === 's3')!;
    return { locations: [...base.locations, { ...s3, name: 'tertiary', region: 'ap-southeast', prefix: `${s3.prefix}-ap` }] };
  });
}

/** What each replicate activity of a backup returned, by location: read from the workflow's history. */
async function replicateResults(handle: WorkflowHandle, h: TemporalHarness): Promise<Map<string, ReplicateResult>> {
  const events = (await handle.fetchHistory()).events ?? [];
  const replicateIds = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'replicate').map((e) => String(e.eventId)));
  const replicated = events
    .filter((e) => e.activityTaskCompletedEventAttributes && replicateIds.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId)))
    .map((e) => h.client.options.loadedDataConverter.payloadConverter.fromPayload<ReplicateResult>(e.activityTaskCompletedEventAttributes!.result!.payloads![0]!));
  return new Map(replicated.map((r) => [r.location, r]));
}

describe('backup workflow when a location fails', () => {
  let h: TemporalHarness;

  beforeAll(async () => {
    h = await temporalHarness(threeRegionConfig());
    // Replication must have blobs to copy for the injected failure to land among them.
    await ensureRecordings(50, 8_000);
  }, 120_000);
  afterAll(async () => h?.close());

  /** Runs one backup of `config` on a worker whose locations are `locations`; resolves once the worker has stopped. */
  async function backupWith(config: Config, locations: BackupLocation[] | undefined, controlPlane: ControlPlane): Promise<WorkflowHandle> {
    return h.withWorker(
      async () => {
        const started = await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'location failure test', requestedBy: 'vitest' });
        await started.result().catch(() => undefined);
        return started;
      },
      { controlPlane: () => controlPlane, ...(locations ? { locations: () => locations } : {}) },
      config,
    );
  }

  /** The outcome every failed replication must have: failed, out of maintenance, and no trace in any location. */
  async function expectFailedWithoutTrace(handle: WorkflowHandle, deps: Dependencies, changes: boolean[]): Promise<void> {
    const deployment = deps.config.deployment.name;
    const failure = await backupFailure(handle);
    expect(failure.message).toContain('failed at step "replicate"');
    expect(causeMessages(failure)).toContain('injected failure: location "tertiary"');
    // What an operator reads first (CLI, API, Temporal UI) must say why, not only "Activity task failed".
    expect.soft(failure.message).toContain('injected failure: location "tertiary"');

    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(STATUS)).toBe('failed');
    // From the search attribute: a query would need a worker, and this one is gone.
    const backupId = description.typedSearchAttributes.get(BACKUP_ID)!;
    expect(backupId).toBeTruthy();

    // Maintenance mode: entered for the pause, left after the dump, left again (idempotently) by the compensation.
    expect(changes).toEqual([true, false, false]);
    expect((await deps.controlPlane('production').maintenance()).enabled).toBe(false);

    // No manifest, no artifact, no blob: in every location, the failing one included.
    expect(await listBackups(deps.locations(), deployment)).toEqual([]);
    for (const location of deps.locations()) {
      expect(await readManifest(location, deployment, backupId), `manifest at ${location.name}`).toBeUndefined();
      expect(await keysUnder(location, backupPrefix(deployment, backupId)), `artifacts at ${location.name}`).toEqual([]);
      // The deployment is new: every blob under it was written by this backup.
      expect(await keysUnder(location, blobsPrefix(deployment)), `blobs at ${location.name}`).toEqual([]);
    }
  }

  it('fails at replicate with maintenance mode off, no manifest anywhere and nothing of the backup left', async () => {
    const config = threeRegionConfig();
    const deps = createDependencies(config);
    const [primary, secondary, tertiary] = deps.locations();
    // The recordings copy writes there first (every location in one pass): the first three blobs land, every later
    // put is refused; the copy goes on without it, and replication, which must fill the gap, fails. The audit trail's
    // entries are written there too, before and after; they are not what this fault is about.
    const failing = new FailingLocation(tertiary!, { failAfterPuts: 3, keys: (key) => !key.startsWith('audit/') });
    const changes: boolean[] = [];

    const handle = await backupWith(config, [primary!, secondary!, failing], observedControlPlane(deps.controlPlane('production'), changes));

    expect(failing.stored).toHaveLength(3);
    expect(failing.stored.every((key) => key.startsWith(blobsPrefix(config.deployment.name)))).toBe(true);
    expect(failing.refused.length).toBeGreaterThan(0);
    await expectFailedWithoutTrace(handle, deps, changes);
  }, 180_000);

  it('cleans up a healthy location that was still replicating when the other one failed', async () => {
    const config = threeRegionConfig();
    const deps = createDependencies(config);
    const [primary, secondary, tertiary] = deps.locations();
    const failing = new FailingLocation(tertiary!, { failAfterPuts: 3, keys: (key) => !key.startsWith('audit/') });
    // The healthy location is slow on one blob: its first blob copy is held until someone looks that blob up there
    // (then half a second more), or 10 s at most, well under the 30 s heartbeat timeout while the other copies go on.
    // A compensation that runs while this copy is still going looks first and is followed by the write.
    let held: string | undefined;
    let openGate!: () => void;
    const lookedUp = new Promise<void>((resolve) => (openGate = resolve));
    const slow = new FailingLocation(secondary!, {
      failAfterPuts: Infinity,
      keys: (key) => key.startsWith(blobsPrefix(config.deployment.name)),
      beforePut: async (key) => {
        if (held !== undefined) return;
        held = key;
        await Promise.race([lookedUp.then(() => delay(500)), delay(10_000)]);
      },
      onGet: (key) => {
        if (key === held) openGate();
      },
    });
    const changes: boolean[] = [];

    const handle = await backupWith(config, [primary!, slow, failing], observedControlPlane(deps.controlPlane('production'), changes));

    expect(failing.refused.length).toBeGreaterThan(0);
    // The held blob copy was made there, and the compensation must have removed it with the rest.
    expect(held).toBeDefined();
    expect(slow.stored).toContain(held);
    await expectFailedWithoutTrace(handle, deps, changes);
  }, 180_000);

  it('commits when a location that failed its writes during the copy takes them at replicate: every blob everywhere', async () => {
    const config = threeRegionConfig();
    const deps = createDependencies(config);
    const [primary, secondary, tertiary] = deps.locations();
    // Refuses the first blob written to it, then takes every write: the copy drops it, replication fills it in.
    const flaky = new FailingLocation(tertiary!, { failAfterPuts: Infinity, refuseFirstPuts: 1, keys: (key) => key.startsWith(blobsPrefix(config.deployment.name)) });
    const changes: boolean[] = [];

    const handle = await backupWith(config, [primary!, secondary!, flaky], observedControlPlane(deps.controlPlane('production'), changes));
    const result = await backupResult(handle);
    expect(flaky.refused).toHaveLength(1);

    // Replication copied only to the location that lacked blobs, and there every blob the copy could not write.
    const by = await replicateResults(handle, h);
    expect(by.get(secondary!.name)?.blobsCopied).toBe(0);
    expect(by.get('tertiary')!.blobsCopied).toBeGreaterThan(0);
    expect(by.get('tertiary')!.blobsCopied + by.get('tertiary')!.blobsPresent).toBe(result.recordings.objects);

    // Committed: the manifest and every blob, at every location.
    const deployment = config.deployment.name;
    const blobs = await keysUnder(primary!, blobsPrefix(deployment));
    expect(blobs).toHaveLength(result.recordings.objects);
    for (const location of deps.locations()) {
      expect(await readManifest(location, deployment, result.backupId), `manifest at ${location.name}`).toBeDefined();
      expect((await keysUnder(location, blobsPrefix(deployment))).sort(), `blobs at ${location.name}`).toEqual(blobs.sort());
    }
  }, 180_000);

  it('catches up a location that missed a backup at the next one, asking it only about the blobs it lacks', async () => {
    const config = threeRegionConfig();
    const deps = createDependencies(config);
    const deployment = config.deployment.name;
    const [primary, secondary, tertiary] = deps.locations();
    const controlPlane = deps.controlPlane('production');
    const first = await backupResult(await backupWith(config, undefined, controlPlane));

    // New recordings, backed up while the third location is out of the configuration: it misses that backup.
    await seedSandbox('production', { organisations: 0, resources: 0, connectors: 0, auditEntries: 0, recordings: 3, recordingBytes: 5_000 });
    const missed = await backupResult(await backupWith(config, [primary!, secondary!], controlPlane));
    expect(missed.recordings.copiedObjects).toBeGreaterThanOrEqual(3);
    expect(await readManifest(tertiary!, deployment, missed.backupId)).toBeUndefined();

    // Back in, with nothing new: its baseline is the newest backup it holds, so it gets what it missed.
    const counted = new CountingLocation(tertiary!);
    const handle = await backupWith(config, [primary!, secondary!, counted], controlPlane);
    const result = await backupResult(handle);
    expect(result.recordings.copiedObjects).toBe(0);
    const by = await replicateResults(handle, h);
    expect(by.get('secondary')).toMatchObject({ baselineBackupId: missed.backupId, blobsShared: result.recordings.objects, blobsCopied: 0, blobsPresent: 0 });
    expect(by.get('tertiary')).toMatchObject({ baselineBackupId: first.backupId, blobsCopied: missed.recordings.copiedObjects, blobsPresent: 0 });
    expect(by.get('tertiary')!.blobsShared).toBe(result.recordings.objects - missed.recordings.copiedObjects);
    const asked = new Set(counted.under(blobsPrefix(deployment)).filter((r) => r.operation !== 'put').map((r) => r.key));
    expect(asked.size).toBe(missed.recordings.copiedObjects);

    // Every blob everywhere, and the third location holds the new backup's manifest.
    const blobs = (await keysUnder(primary!, blobsPrefix(deployment))).sort();
    expect(blobs).toHaveLength(result.recordings.objects);
    for (const location of deps.locations()) {
      expect(await readManifest(location, deployment, result.backupId), `manifest at ${location.name}`).toBeDefined();
      expect((await keysUnder(location, blobsPrefix(deployment))).sort(), `blobs at ${location.name}`).toEqual(blobs);
    }
  }, 240_000);

  it('refuses a configuration with locations in one region before entering maintenance mode', async () => {
    const oneRegion = isolatedConfig((base) => ({ locations: base.locations.map((l) => ({ ...l, region: 'eu-central' })) }));
    const deps = createDependencies(oneRegion);
    const changes: boolean[] = [];

    const handle = await backupWith(oneRegion, undefined, observedControlPlane(deps.controlPlane('production'), changes));

    const failure = await backupFailure(handle);
    expect(failure.message).toContain('failed at step "prepare"');
    const refusal = 'a complete backup needs locations in at least two regions; the configuration has 2 location(s) in 1 region(s) (eu-central): add a location with another "region" to "locations"';
    expect(causeMessages(failure)).toContain(refusal);
    // The fix must be in the message an operator reads first, not only deep in the cause chain.
    expect.soft(failure.message).toContain(refusal);
    expect(changes).toEqual([]);
    expect((await deps.controlPlane('production').maintenance()).enabled).toBe(false);
    expect((await handle.describe()).typedSearchAttributes.get(STATUS)).toBe('failed');
    // Refused up front, where retrying cannot help: one attempt of one activity, and nothing written anywhere.
    const events = (await handle.fetchHistory()).events ?? [];
    const typeOf = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name!]));
    const started = events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => ({ type: typeOf.get(String(e.activityTaskStartedEventAttributes!.scheduledEventId)), attempt: e.activityTaskStartedEventAttributes!.attempt }));
    expect(started.filter((s) => s.type === 'prepareBackup').map((s) => s.attempt)).toEqual([1]);
    // Besides bookkeeping (timeouts, the deployment lock, the audit trail's started and failed), nothing ran: no quiesce, no dump, no undo.
    expect(started.map((s) => s.type).filter((t) => !['activityTimeouts', 'acquireDeploymentLock', 'releaseDeploymentLock', 'recordAuditEvent', 'prepareBackup'].includes(t!))).toEqual([]);
    for (const location of deps.locations()) {
      expect(await keysUnder(location, `${oneRegion.deployment.name}/`), `objects at ${location.name}`).toEqual([]);
    }
  });
});
