// Master-key rotation: every backup rewrapped under the new key in every location, nothing else rewritten; after it
// the old key can leave the configuration and the backups still verify; before it they cannot.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { readManifest } from '../../src/catalog/catalog';
import { hashStored } from '../../src/catalog/artifacts';
import { backupResult, startBackup } from '../../src/operations/backup';
import { rotateMasterKey } from '../../src/operations/rotate-keys';
import { runVerify } from '../../src/operations/verify';
import { createDependencies } from '../../src/runtime/dependencies';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

process.env.VAULTPAM_TEST_KEY_OLD = randomBytes(32).toString('hex');
process.env.VAULTPAM_TEST_KEY_NEW = randomBytes(32).toString('base64');

const withKeys = (base: Config, activeKeyId: string, ids: string[]): Config =>
  parseConfig({ ...base, encryption: { activeKeyId, keys: ids.map((id) => ({ id, secret: { env: `VAULTPAM_TEST_KEY_${id.toUpperCase()}` } })) } });

describe('master-key rotation', () => {
  const base = isolatedConfig();
  const before = withKeys(base, 'old', ['old']);
  const during = withKeys(base, 'new', ['old', 'new']);
  const after = withKeys(base, 'new', ['new']);
  let h: TemporalHarness;
  let backupId: string;

  beforeAll(async () => {
    h = await temporalHarness(before);
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, before, { taskQueue: h.taskQueue })), {}, before)).backupId;
  }, 180_000);
  afterAll(async () => h?.close());

  it('refuses to verify with a ring that lacks the key the backup names', async () => {
    const report = await h.withWorker(() => runVerify(h.client, after, backupId, false, h.taskQueue), {}, after);
    expect(report.ok).toBe(false);
    expect(report.locations[0]!.problem).toMatch(/old/);
  });

  it('rewraps every backup once, everywhere, touching no artifact; then the old key can go', async () => {
    const deps = createDependencies(during);
    const manifestBefore = (await readManifest(deps.locations()[0]!, base.deployment.name, backupId))!;
    const dumpBefore = await hashStored(deps.locations()[1]!, manifestBefore.artifacts.db.key);

    const first = await rotateMasterKey(deps.locations(), base.deployment.name, deps.keyRing());
    expect(first.rewrapped).toEqual([{ backupId, from: 'old', locations: ['primary', 'secondary'] }]);
    for (const location of deps.locations()) {
      const m = (await readManifest(location, base.deployment.name, backupId))!;
      expect(m.encryption.dataKey.keyId).toBe('new');
      // Only the wrapped key changes, and the MAC that covers it, now under the new master key.
      expect(m.authentication?.keyId).toBe('new');
      expect({ ...m, encryption: undefined, authentication: undefined }).toEqual({ ...manifestBefore, encryption: undefined, authentication: undefined });
      expect(await readManifest(location, base.deployment.name, backupId, { keyRing: deps.keyRing() })).toEqual(m);
    }
    expect(await hashStored(deps.locations()[1]!, manifestBefore.artifacts.db.key)).toEqual(dumpBefore);

    const again = await rotateMasterKey(deps.locations(), base.deployment.name, deps.keyRing());
    expect(again.rewrapped).toEqual([]);
    expect(again.alreadyCurrent).toBe(1);

    const report = await h.withWorker(() => runVerify(h.client, after, backupId, true, h.taskQueue), {}, after);
    expect(report.ok).toBe(true);
    expect(report.locations.map((l) => l.level)).toEqual(['deep', 'standard']);
  });
});
