// A backup whose dump is corrupt at the first location is restored from the next one; corrupt at every location, the
// restore stops at preflight and the deployment is never stopped or changed.
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAll } from '../../src/catalog/artifacts';
import { readManifest } from '../../src/catalog/catalog';
import type { Manifest } from '../../src/catalog/manifest';
import { backupResult, startBackup } from '../../src/operations/backup';
import { restoreReport } from '../../src/operations/restore';
import { startApprovedRestore } from '../support/approved-restore';
import { dropDatabase, withClient } from '../../src/postgres';
import type { BackupLocation } from '../../src/storage';
import type { RestoreReport } from '../../workflows/restore-types';
import { STEP } from '../../workflows/search-attributes';
import { observedServiceControl, restoreFixture, watchHealth, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';



/** Databases a full restore of this deployment creates beside the live one (restoreDatabaseNames' `_r_`). */
async function restoredCopies(f: RestoreFixture): Promise<string[]> {
  const pg = f.config.deployment.postgres;
  const rows = await withClient(pg, f.deps.postgresPassword('production'), async (c) => (await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [`${pg.database}_r_`])).rows, {
    database: 'postgres',
  });
  return rows.map((r) => r.datname);
}

/** The same bytes with one bit flipped in the middle: same size, another checksum. */
async function corrupt(location: BackupLocation, key: string, original: Buffer): Promise<void> {
  const flipped = Buffer.from(original);
  const at = Math.floor(flipped.length / 2);
  flipped[at] = flipped[at]! ^ 0x01;
  await location.put(key, flipped);
}

describe('restore from the next location when the first copy is corrupt', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;
  let manifest: Manifest;
  let locations: BackupLocation[];
  let originalDump: Buffer;
  const setAside: string[] = [];

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 20, auditEntries: 300, recordings: 20, recordingBytes: 4_000 });
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the corruption' })))).backupId;
    locations = f.deps.locations();
    expect(locations.length).toBeGreaterThanOrEqual(2);
    expect(locations[0]!.kind).toBe('s3');
    manifest = (await readManifest(locations[0]!, f.config.deployment.name, backupId))!;
    expect(manifest).toBeDefined();
    originalDump = await readAll(await locations[0]!.get(manifest.artifacts.db.key));
  }, 240_000);
  afterAll(async () => {
    // The pre-restore database a completed restore keeps for cleanup is this test's to drop.
    const pg = f?.config.deployment.postgres;
    for (const name of setAside) await dropDatabase(pg, f.deps.postgresPassword('production'), name, { ifExists: true, force: true }).catch(() => undefined);
    await h?.close();
    await f?.destroy();
  });

  it('skips the first location with its checksum problem, restores from the second, and verifies', async () => {
    await corrupt(locations[0]!, manifest.artifacts.db.key, originalDump);
    const resources = ((await f.api('GET', '/resources?limit=100')).json as { resources: { id: string }[] }).resources;
    for (const r of resources.slice(0, 5)) expect((await f.api('DELETE', `/resources/${r.id}`)).status).toBe(200);

    const started = Date.now();
    const report = await h.withWorker(async () => {
      const handle = await startApprovedRestore(h.client, f.config, { backupId, reason: 'corrupt primary copy', taskQueue: h.taskQueue });
      return (await handle.result()) as RestoreReport;
    });
    console.info(`restore from the second location: ${((Date.now() - started) / 1000).toFixed(1)} s, RTO ${report.rtoMs} ms`);
    if (report.previousDatabase) setAside.push(report.previousDatabase);

    expect(report.status).toBe('completed');
    expect(report.backup!.backupId).toBe(backupId);
    expect(report.backup!.location).toBe(locations[1]!.name);
    expect(report.backup!.skipped).toHaveLength(1);
    expect(report.backup!.skipped[0]!.location).toBe(locations[0]!.name);
    // The one read of the dump finds the flipped byte by its chunk's tag (or, had the tags held, by its SHA-256).
    expect(report.backup!.skipped[0]!.problem).toMatch(/corrupt or truncated: chunk \d+ failed authentication|SHA-256 [0-9a-f]{64} differs from the recorded [0-9a-f]{64}/);
    expect(report.backup!.skipped[0]!.problem).toContain(manifest.artifacts.db.key);
    expect(report.verify!.found).toEqual(report.verify!.expected);
    expect(report.verify!.expected.resources).toBe(resources.length);
    expect(report.smokeTest!.sessionId).toBeTruthy();
    expect((await f.fingerprint()).counts.resources).toBe(resources.length);
  });

  it('fails at preflight when every copy is corrupt, naming each location, and never stops or changes the deployment', async () => {
    // Whatever the first test did, both copies of the dump are now corrupt.
    await corrupt(locations[0]!, manifest.artifacts.db.key, originalDump);
    await corrupt(locations[1]!, manifest.artifacts.db.key, await readAll(await locations[1]!.get(manifest.artifacts.db.key)));
    const before = await f.fingerprint();
    const service = observedServiceControl(f);
    const health = watchHealth(f);

    let failure: unknown;
    let workflowId = '';
    await h.withWorker(async () => {
      const handle = await startApprovedRestore(h.client, f.config, { backupId, reason: 'every copy corrupt', taskQueue: h.taskQueue });
      workflowId = handle.workflowId;
      failure = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
    }, service.overrides);
    const watched = await health.stop();

    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const refused = (failure as WorkflowFailedError).cause;
    expect(refused).toBeInstanceOf(ApplicationFailure);
    expect((refused as ApplicationFailure).type).toBe('RestoreRefused');
    expect(refused!.message).toMatch(/^restore refused at step "preflight", before any change: /);
    const activityFailure = refused!.cause;
    expect(activityFailure).toBeInstanceOf(ActivityFailure);
    expect((activityFailure as ActivityFailure).activityType).toBe('resolveBackup');
    const cause = (activityFailure as ActivityFailure).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('BackupCorrupt');
    expect((cause as ApplicationFailure).nonRetryable).toBe(true);
    for (const location of locations) expect(cause!.message).toContain(`${location.name}: `);
    expect(cause!.message).toMatch(new RegExp(`backup ${backupId} failed verification at every location`));

    // The operator's view (CLI, API) of the refused restore names the problem, not just that an activity failed.
    const report = await restoreReport(h.client, workflowId);
    expect(report.status).toBe('refused');
    expect(report.error).toMatch(new RegExp(`backup ${backupId} failed verification at every location: ${locations[0]!.name}: `));

    // Nothing ran past preflight: no stop, no database set aside, no change, and the control plane answered throughout.
    const description = await h.client.workflow.getHandle(workflowId).describe();
    expect(description.typedSearchAttributes.get(STEP)).toBe('preflight');
    expect(service.calls).toEqual([]);
    expect(watched.checks).toBeGreaterThan(0);
    expect(watched.problems).toEqual([]);
    expect(await f.fingerprint()).toEqual(before);
    expect(await restoredCopies(f)).toEqual([]);
  });
});
