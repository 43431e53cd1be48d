// Master-key rotation as a workflow: every backup and every restore journal rewrapped under the new key in every
// location, nothing else rewritten, safe to run twice; a location that cannot be listed fails it, naming the
// location, before anything changes. After it the old key can leave the configuration; before it, it cannot.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { readManifest } from '../../src/catalog/catalog';
import { hashStored, openArtifact, readAll } from '../../src/catalog/artifacts';
import type { Artifact } from '../../src/catalog/manifest';
import { unwrapKey, wrappedKeySchema } from '../../src/crypto';
import { backupResult, startBackup } from '../../src/operations/backup';
import { startApprovedRestore } from '../support/approved-restore';
import { runKeyRotation } from '../../src/operations/rotate-keys';
import { runVerify } from '../../src/operations/verify';
import { runAuditCheck } from '../../src/operations/audit';
import { createDependencies } from '../../src/runtime/dependencies';
import { restoreJournalKey, type BackupLocation } from '../../src/storage';
import type { RestoreReport } from '../../workflows/restore-types';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

process.env.VAULTPAM_TEST_KEY_OLD = randomBytes(32).toString('hex');
process.env.VAULTPAM_TEST_KEY_NEW = randomBytes(32).toString('base64');

const withKeys = (base: Config, activeKeyId: string, ids: string[]): Config =>
  parseConfig({ ...base, encryption: { activeKeyId, keys: ids.map((id) => ({ id, secret: { env: `VAULTPAM_TEST_KEY_${id.toUpperCase()}` } })) } });

async function readText(location: BackupLocation, key: string): Promise<string> {
  return (await readAll(await location.get(key))).toString('utf8');
}

describe('master-key rotation', () => {
  let f: RestoreFixture;
  let before: Config;
  let during: Config;
  let after: Config;
  let h: TemporalHarness;
  let backupId: string;
  let restore: RestoreReport;

  beforeAll(async () => {
    f = await restoreFixture();
    await f.seed({ resources: 3, connectors: 2, auditEntries: 10, recordings: 6, recordingBytes: 2_000 });
    before = withKeys(f.config, 'old', ['old']);
    during = withKeys(f.config, 'new', ['old', 'new']);
    after = withKeys(f.config, 'new', ['new']);
    h = await temporalHarness(before);
    await h.withWorker(
      async () => {
        backupId = (await backupResult(await startBackup(h.client, before, { taskQueue: h.taskQueue }))).backupId;
        // A restore leaves its journal (the connectors it replaced), under a data key of its own wrapped by the master key.
        const handle = await startApprovedRestore(h.client, before, { backupId, safetySnapshot: false, taskQueue: h.taskQueue });
        restore = (await handle.result()) as RestoreReport;
      },
      {},
      before,
    );
    expect(restore.status).toBe('completed');
  }, 300_000);
  afterAll(async () => {
    await h?.close();
    await f?.destroy();
  });

  const deployment = () => f.config.deployment.name;
  const journalDataKey = (restoreId: string) => restoreJournalKey(deployment(), restoreId, 'data-key.json');

  it('refuses to verify with a ring that lacks the key the backup names', async () => {
    const report = await h.withWorker(() => runVerify(h.client, after, backupId, false, h.taskQueue), {}, after);
    expect(report.ok).toBe(false);
    expect(report.locations[0]!.problem).toMatch(/old/);
  });

  it('fails, naming it, when a location cannot be listed, and rewrites nothing', async () => {
    const withUnreachable = parseConfig({
      ...during,
      locations: [
        ...during.locations,
        { name: 'unreachable', region: 'ap-south', kind: 's3', endPoint: '127.0.0.1', port: 1, accessKey: 'nobody', secretKey: { env: 'VAULTPAM_TEST_KEY_OLD' }, bucket: 'nowhere' },
      ],
    });
    const deps = createDependencies(during);
    const journal = deps.locations().find((l) => l.name === restore.backup!.location)!;
    const journalBefore = await readText(journal, journalDataKey(restore.restoreId));
    const manifestsBefore = await Promise.all(deps.locations().map((l) => readText(l, `${deployment()}/backups/${backupId}/manifest.json`)));

    await expect(h.withWorker(() => runKeyRotation(h.client, withUnreachable, h.taskQueue), {}, withUnreachable)).rejects.toThrow(/location "unreachable" cannot be listed/);

    expect(await readText(journal, journalDataKey(restore.restoreId))).toBe(journalBefore);
    expect(await Promise.all(deps.locations().map((l) => readText(l, `${deployment()}/backups/${backupId}/manifest.json`)))).toEqual(manifestsBefore);
  });

  it('rewraps every backup and restore journal once, everywhere, touching no artifact; then the old key can go', async () => {
    const deps = createDependencies(during);
    const manifestBefore = (await readManifest(deps.locations()[0]!, deployment(), backupId))!;
    const dumpBefore = await hashStored(deps.locations()[1]!, manifestBefore.artifacts.db.key);

    const first = await h.withWorker(() => runKeyRotation(h.client, during, h.taskQueue), {}, during);
    expect(first.rewrapped).toEqual([{ backupId, from: 'old', locations: ['primary', 'secondary'] }]);
    expect(first.journalsRewrapped).toBe(1);
    for (const location of deps.locations()) {
      const m = (await readManifest(location, deployment(), backupId))!;
      expect(m.encryption.dataKey.keyId).toBe('new');
      // Only the wrapped key changes, and the MAC that covers it, now under the new master key.
      expect(m.authentication?.keyId).toBe('new');
      expect({ ...m, encryption: undefined, authentication: undefined }).toEqual({ ...manifestBefore, encryption: undefined, authentication: undefined });
      expect(await readManifest(location, deployment(), backupId, { keyRing: deps.keyRing() })).toEqual(m);
      const dataKeyFile = `${deployment()}/backups/${backupId}/data-key.json`;
      if (await location.exists(dataKeyFile)) expect(wrappedKeySchema.parse(JSON.parse(await readText(location, dataKeyFile))).keyId).toBe('new');
    }
    expect(await hashStored(deps.locations()[1]!, manifestBefore.artifacts.db.key)).toEqual(dumpBefore);

    const again = await h.withWorker(() => runKeyRotation(h.client, during, h.taskQueue), {}, during);
    expect(again.rewrapped).toEqual([]);
    expect(again.alreadyCurrent).toBe(1);
    expect(again.journalsRewrapped).toBe(0);

    // Only the new key from here on: the backup verifies (deep), and the restore journal still opens.
    const report = await h.withWorker(() => runVerify(h.client, after, backupId, true, h.taskQueue), {}, after);
    expect(report.ok).toBe(true);
    expect(report.locations.map((l) => l.level)).toEqual(['deep', 'standard']);
    const onlyNew = createDependencies(after);
    const journal = onlyNew.locations().find((l) => l.name === restore.backup!.location)!;
    const journalKey = unwrapKey(wrappedKeySchema.parse(JSON.parse(await readText(journal, journalDataKey(restore.restoreId)))), onlyNew.keyRing());
    const saved = JSON.parse(await readText(journal, restoreJournalKey(deployment(), restore.restoreId, 'connectors-before.json'))) as Artifact;
    const connectors = JSON.parse((await readAll(await openArtifact(journal, saved, journalKey))).toString('utf8')) as { connectors: unknown[] };
    expect(connectors.connectors.length).toBeGreaterThan(0);

    // The audit trail: entries before the rotation stay sealed under the old key and verify while it is in the ring;
    // once it is gone they are unverifiable, not tampered, and the trail still passes.
    const withBoth = await runAuditCheck(during);
    expect(withBoth.problems).toEqual([]);
    const rotations = withBoth.entries.filter((e) => e.kind === 'key.rotated');
    expect(rotations.map((e) => e.details.activeKeyId)).toEqual(['new', 'new']);
    expect(rotations.map((e) => e.details.rewrapped)).toEqual([1, 0]);
    const withNewOnly = await runAuditCheck(after);
    expect(withNewOnly.ok).toBe(true);
    expect(withNewOnly.unverifiable).toBeGreaterThan(0);
    const firstRotation = withNewOnly.entries.find((e) => e.kind === 'key.rotated')!;
    expect(withNewOnly.entries.filter((e) => e.mac === 'unverifiable').every((e) => e.seq < firstRotation.seq)).toBe(true);
    expect(withNewOnly.entries.filter((e) => e.seq >= firstRotation.seq).every((e) => e.mac === 'valid')).toBe(true);
  });
});
