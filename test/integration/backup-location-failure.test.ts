// A backup whose replication hits a failing location: it fails at "replicate", leaves maintenance mode, commits no
// manifest and leaves nothing behind anywhere; and a configuration with one region is refused before any pause.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { listBackups, readManifest } from '../../src/catalog/catalog';
import { backupResult, startBackup } from '../../src/operations/backup';
import { createDependencies } from '../../src/runtime/dependencies';
import { backupPrefix, blobsPrefix, type BackupLocation } from '../../src/storage';
import type { ControlPlane } from '../../src/vaultpam/control-plane';
import { BACKUP_ID, STATUS } from '../../workflows/search-attributes';
import { isolatedConfig } from '../support/backup-fixture';
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

describe('backup workflow when a location fails', () => {
  // Three locations in three regions; the third, a second S3 location, is the one that fails.
  const config = isolatedConfig((base) => {
    const s3 = base.locations.find((l) => l.kind === 's3')!;
    return { locations: [...base.locations, { ...s3, name: 'tertiary', region: 'ap-southeast', prefix: `${s3.prefix}-ap` }] };
  });
  const deployment = config.deployment.name;
  const deps = createDependencies(config);
  let h: TemporalHarness;

  beforeAll(async () => {
    h = await temporalHarness(config);
  });
  afterAll(async () => h?.close());

  it('fails at replicate with maintenance mode off, no manifest anywhere and nothing of the backup left', async () => {
    const [primary, secondary, tertiary] = deps.locations();
    expect(tertiary!.name).toBe('tertiary');
    // Replication is the first writer there: the first three blob copies land, every later put is refused.
    const failing = new FailingLocation(tertiary!, { failAfterPuts: 3 });
    const locations = [primary!, secondary!, failing];
    const changes: boolean[] = [];
    const controlPlane = observedControlPlane(deps.controlPlane('production'), changes);

    const handle = await h.withWorker(async () => {
      const started = await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'location failure test', requestedBy: 'vitest' });
      await started.result().catch(() => undefined);
      return started;
    }, { locations: () => locations, controlPlane: () => controlPlane });

    const failure = await backupFailure(handle);
    expect(failure.message).toContain('failed at step "replicate"');
    expect(causeMessages(failure)).toContain('injected failure: location "tertiary"');
    // What an operator reads first (CLI, API, Temporal UI) must say why, not only "Activity task failed".
    expect.soft(failure.message).toContain('injected failure: location "tertiary"');
    expect(failing.stored).toHaveLength(3);
    expect(failing.stored.every((key) => key.startsWith(blobsPrefix(deployment)))).toBe(true);
    expect(failing.refused.length).toBeGreaterThan(0);

    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(STATUS)).toBe('failed');
    // From the search attribute: a query would need a worker, and this one is gone.
    const backupId = description.typedSearchAttributes.get(BACKUP_ID)!;
    expect(backupId).toBeTruthy();

    // Maintenance mode: entered once for the pause, left after the dump, left again (idempotently) by the compensation.
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
  });

  it('refuses a configuration with locations in one region before entering maintenance mode', async () => {
    const oneRegion = isolatedConfig((base) => ({ locations: base.locations.map((l) => ({ ...l, region: 'eu-central' })) }));
    const oneRegionDeps = createDependencies(oneRegion);
    const changes: boolean[] = [];
    const controlPlane = observedControlPlane(oneRegionDeps.controlPlane('production'), changes);

    const handle = await h.withWorker(
      async () => {
        const started = await startBackup(h.client, oneRegion, { taskQueue: h.taskQueue, reason: 'one region test', requestedBy: 'vitest' });
        await started.result().catch(() => undefined);
        return started;
      },
      { controlPlane: () => controlPlane },
      oneRegion,
    );

    const failure = await backupFailure(handle);
    expect(failure.message).toContain('failed at step "prepare"');
    const refusal = 'a complete backup needs locations in at least two regions; the configuration has 2 location(s) in 1 region(s) (eu-central): add a location with another "region" to "locations"';
    expect(causeMessages(failure)).toContain(refusal);
    // The fix must be in the message an operator reads first, not only deep in the cause chain.
    expect.soft(failure.message).toContain(refusal);
    expect(changes).toEqual([]);
    expect((await oneRegionDeps.controlPlane('production').maintenance()).enabled).toBe(false);
    expect((await handle.describe()).typedSearchAttributes.get(STATUS)).toBe('failed');
    // Refused up front, so retrying could not help: one attempt, and nothing written to any location.
    const history = await handle.fetchHistory();
    const prepareAttempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    expect(prepareAttempts).toEqual([1]);
    for (const location of oneRegionDeps.locations()) {
      expect(await keysUnder(location, `${oneRegion.deployment.name}/`), `objects at ${location.name}`).toEqual([]);
    }
  });
});
