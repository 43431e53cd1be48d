// The backup workflow on the real stack: two regions, checksums, a decryptable dump, incremental recordings,
// maintenance mode only during the pause, and no secret in any history.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localStackDir } from '../../src/config/local-stack';
import { openArtifact } from '../../src/catalog/artifacts';
import { listBackups, readManifest } from '../../src/catalog/catalog';
import { unwrapKey } from '../../src/crypto';
import { backupResult, startBackup } from '../../src/operations/backup';
import { listDump } from '../../src/postgres';
import { createDependencies } from '../../src/runtime/dependencies';
import type { ControlPlane } from '../../src/vaultpam/control-plane';
import { verifyChecksums } from '../../activities/verify';
import { backupPrefix, blobsPrefix, manifestKey } from '../../src/storage';
import { isolatedConfig, seedSandbox } from '../support/backup-fixture';
import { CountingLocation } from '../support/counting-location';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

describe('backup workflow', () => {
  const config = isolatedConfig();
  const deps = createDependencies(config);
  let h: TemporalHarness;
  const workflowRuns: { workflowId: string; runId: string }[] = [];

  beforeAll(async () => {
    h = await temporalHarness(config);
    await seedSandbox('production', { resources: 20, auditEntries: 500, recordings: 100, recordingBytes: 20_000 });
  });
  afterAll(async () => h?.close());

  async function backup(overrides = {}) {
    return h.withWorker(async () => {
      const handle = await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: 'test', requestedBy: 'vitest' });
      workflowRuns.push({ workflowId: handle.workflowId, runId: (await handle.describe()).runId });
      return backupResult(handle);
    }, overrides);
  }

  it('writes a verified backup to two locations in different regions, with a dump that decrypts and lists', async () => {
    const result = await backup();
    expect(result.locations).toEqual(['primary', 'secondary']);
    const [primary, secondary] = deps.locations();
    const m1 = await readManifest(primary!, config.deployment.name, result.backupId);
    const m2 = await readManifest(secondary!, config.deployment.name, result.backupId);
    expect(m1).toBeDefined();
    expect(m2).toEqual(m1);
    expect(new Set(m1!.locations.map((l) => l.region)).size).toBe(2);
    for (const location of [primary!, secondary!]) await verifyChecksums(location, m1!.artifacts);
    // The dump decrypts with the manifest's wrapped key and passes pg_restore --list.
    const dataKey = unwrapKey(m1!.encryption.dataKey, deps.keyRing());
    const listing = await listDump(await openArtifact(secondary!, m1!.artifacts.db, dataKey));
    expect(listing.tables).toEqual(expect.arrayContaining(['public.resources', 'public.safes', 'public.credentials', 'public.audit_log', 'public.sessions']));
    expect(m1!.postgres.rowCounts.resources).toBeGreaterThanOrEqual(20);
    expect(m1!.recordings.objects).toBeGreaterThanOrEqual(100);
    expect(m1!.recordings.copiedObjects).toBe(m1!.recordings.objects);
    const catalog = await listBackups(deps.locations(), config.deployment.name);
    expect(catalog.map((e) => e.backupId)).toEqual([result.backupId]);
    expect(catalog[0]!.locations).toEqual(['primary', 'secondary']);
  });

  it('copies only the new recordings the next time (1% more)', async () => {
    const before = (await listBackups(deps.locations(), config.deployment.name))[0]!.manifest;
    const added = Math.max(1, Math.ceil(before.recordings.objects / 100));
    await seedSandbox('production', { organisations: 0, resources: 0, connectors: 0, auditEntries: 0, recordings: added, recordingBytes: 30_000 });
    const result = await backup();
    const manifest = (await readManifest(deps.locations()[0]!, config.deployment.name, result.backupId))!;
    expect(manifest.recordings.previousBackupId).toBe(before.backupId);
    expect(manifest.recordings.objects).toBe(before.recordings.objects + added);
    expect(manifest.recordings.copiedObjects).toBe(added);
    expect(manifest.recordings.copiedBytes).toBe(added * 30_000);
    expect(manifest.recordings.reusedObjects).toBe(before.recordings.objects);
  });

  it('asks no location about any blob when nothing is new: sync, verify, replicate and prune cost what changed', async () => {
    const catalog = await listBackups(deps.locations(), config.deployment.name);
    const before = catalog[0]!.manifest;
    const oldest = catalog.at(-1)!.backupId;
    expect(catalog.length).toBeGreaterThan(1);
    const counted = deps.locations().map((l) => new CountingLocation(l));
    const result = await backup({ locations: () => counted });
    expect(result.recordings.copiedObjects).toBe(0);
    expect(result.recordings.reusedObjects).toBe(before.recordings.objects);
    expect(result.pruned?.removed ?? []).toEqual([]);
    const blobs = blobsPrefix(config.deployment.name);
    for (const location of counted) {
      // Not a HEAD, a ranged read, a listing nor a delete under blobs/: no request grows with the recordings held.
      expect(location.under(blobs), `blob requests at ${location.name}`).toEqual([]);
      // Nor is an older backup's index read (prune marks only when a backup expires): only its manifest, by the catalog.
      const older = location.under(backupPrefix(config.deployment.name, oldest)).filter((r) => r.key !== manifestKey(config.deployment.name, oldest));
      expect(older, `requests for ${oldest} at ${location.name}`).toEqual([]);
      // The counter saw the backup's own writes there.
      expect(location.requests.some((r) => r.operation === 'put' && r.key === manifestKey(config.deployment.name, result.backupId)), location.name).toBe(true);
    }
    // Verify reads each artifact once (hashed, decrypted and listed in the same pass); replicate reads it once more
    // at the primary to copy it, and once at the copy to check it there.
    const manifest = (await readManifest(deps.locations()[0]!, config.deployment.name, result.backupId))!;
    const reads = (location: CountingLocation, key: string) => location.requests.filter((r) => r.operation === 'get' && r.key === key).length;
    for (const artifact of [manifest.artifacts.db, manifest.artifacts.connectors, manifest.artifacts.recordingsIndex]) {
      expect(reads(counted[0]!, artifact.key), `reads of ${artifact.key} at the primary`).toBe(2);
      expect(reads(counted[1]!, artifact.key), `reads of ${artifact.key} at the copy`).toBe(1);
    }
    // Every entry is the previous backup's (committed at the copy) or one the copy wrote: replicate opens no baseline.
    expect(reads(counted[1]!, before.artifacts.recordingsIndex.key), 'reads of the previous index at the copy').toBe(0);
  });

  it('holds maintenance mode during the pause only, and records its length', async () => {
    const events: { enabled: boolean; writeDuringPause?: number }[] = [];
    const real = deps.controlPlane('production');
    const token = readFileSync(join(localStackDir(), 'secrets', 'control-plane-token'), 'utf8').trim();
    // The real control plane, observed: every maintenance change, and a real write attempted while it is on.
    const observed: ControlPlane = {
      ...real,
      async setMaintenance(enabled, reason, signal) {
        const state = await real.setMaintenance(enabled, reason, signal);
        const event: { enabled: boolean; writeDuringPause?: number } = { enabled };
        if (enabled) {
          const res = await fetch(`${real.url}/resources`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'during-pause', host: 'x.example', protocol: 'ssh' }) });
          event.writeDuringPause = res.status;
        }
        events.push(event);
        return state;
      },
    };
    const result = await backup({ controlPlane: () => observed });
    expect(events.map((e) => e.enabled)).toEqual([true, false]);
    expect(events[0]!.writeDuringPause).toBe(503);
    expect((await real.maintenance()).enabled).toBe(false);
    const manifest = (await readManifest(deps.locations()[0]!, config.deployment.name, result.backupId))!;
    expect(manifest.quiesce.pauseMs).toBeGreaterThan(0);
    expect(manifest.quiesce.pauseMs).toBe(new Date(manifest.quiesce.endedAt).getTime() - new Date(manifest.quiesce.startedAt).getTime());
    expect(result.pauseMs).toBe(manifest.quiesce.pauseMs);
  });

  it('keeps every secret out of the workflow histories', async () => {
    expect(workflowRuns.length).toBeGreaterThanOrEqual(3);
    const secrets = ['pg-password', 's3-secret-key', 'control-plane-token', 'master-key', 'api-token'].map((name) =>
      readFileSync(join(localStackDir(), 'secrets', name), 'utf8').trim(),
    );
    const masterKey = Buffer.from(secrets[3]!, 'hex');
    const needles = [...secrets, masterKey.toString('base64')];
    // Data keys too: the worker's unwrapped key of each backup must not appear, raw or encoded.
    for (const entry of await listBackups(deps.locations(), config.deployment.name)) {
      const dataKey = unwrapKey(entry.manifest.encryption.dataKey, deps.keyRing());
      needles.push(dataKey.toString('base64'), dataKey.toString('hex'));
    }
    for (const run of workflowRuns) {
      const history = await h.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      const text = JSON.stringify(history, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
      expect(text.length).toBeGreaterThan(1000);
      for (const needle of needles) expect(text.includes(needle), `a secret appears in ${run.workflowId}`).toBe(false);
    }
  });
});
