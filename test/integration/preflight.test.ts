// Preflight on the real dev server: activities reach the real PostgreSQL, S3 server, sandbox control plane and locations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { localStackConfig } from '../../src/config/local-stack';
import { runPreflight } from '../../src/operations/preflight';
import { backupResult, startBackup } from '../../src/operations/backup';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

describe('preflight workflow', () => {
  let h: TemporalHarness;
  beforeAll(async () => {
    // A catalog of its own: the recovery-point check must not depend on backups other runs left behind.
    h = await temporalHarness(isolatedConfig());
  });
  afterAll(async () => h?.close());

  it('finds PostgreSQL, the recordings bucket, the control plane and two regions of locations healthy', async () => {
    const { workflowId, report } = await h.withWorker(() => runPreflight(h.client, h.config, 'production', h.taskQueue, { allowNoBackup: true }));
    const byName = Object.fromEntries(report.checks.map((c) => [c.check, c]));
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(byName.postgres?.facts.serverVersion).toMatch(/^15\./);
    expect(byName.postgres?.facts.pgDumpVersion).toMatch(/^1[5-9]\./);
    expect(byName.recordings?.facts.bucket).toBe('recordings');
    expect(byName['control-plane']?.summary).toMatch(/healthy: \d+ resources/);
    expect(byName['location:primary']?.ok).toBe(true);
    expect(byName['location:secondary']?.ok).toBe(true);
    expect(byName.regions?.facts.regions).toBe(2);

    // The run is visible to operators: search attributes and the static summary.
    const description = await h.client.workflow.getHandle(workflowId).describe();
    expect(description.status.name).toBe('COMPLETED');
    expect(description.searchAttributes.VaultpamOperation).toEqual(['preflight']);
    expect(description.searchAttributes.VaultpamDeployment).toEqual([h.config.deployment.name]);
    expect(description.searchAttributes.VaultpamStatus).toEqual(['passed']);
    expect(await description.staticSummary()).toBe(`Preflight of ${h.config.deployment.name} (production)`);
  });

  it('reports a wrong control-plane token and an unreachable database as failed checks with a hint', async () => {
    const base = localStackConfig();
    const broken = parseConfig({
      ...base,
      deployment: {
        ...base.deployment,
        postgres: { ...base.deployment.postgres, port: 1 },
        controlPlane: { ...base.deployment.controlPlane, token: { env: 'VAULTPAM_TEST_WRONG_TOKEN' } },
      },
    });
    process.env.VAULTPAM_TEST_WRONG_TOKEN = 'not-the-token';
    const { report } = await h.withWorker(() => runPreflight(h.client, broken, 'production', h.taskQueue), {}, broken);
    const byName = Object.fromEntries(report.checks.map((c) => [c.check, c]));
    expect(report.ok).toBe(false);
    expect(byName.postgres?.ok).toBe(false);
    expect(byName.postgres?.hint).toMatch(/deployment\.postgres/);
    expect(byName['control-plane']?.ok).toBe(false);
    expect(byName['control-plane']?.summary).toMatch(/401/);
    expect(byName.recordings?.ok).toBe(true);
  });

  it('fails the recovery-point check once the newest backup is older than the objective (clock moved forward)', async () => {
    const config = isolatedConfig();
    // No backup at all fails the check, unless the caller says this is a first run.
    const fresh = await h.withWorker(() => runPreflight(h.client, config, 'production', h.taskQueue), {}, config);
    expect(fresh.report.checks.find((c) => c.check === 'recovery-point')).toMatchObject({ ok: false, summary: expect.stringMatching(/no committed backup/), hint: expect.stringMatching(/--allow-no-backup/) });
    expect(fresh.report.ok).toBe(false);
    const first = await h.withWorker(() => runPreflight(h.client, config, 'production', h.taskQueue, { allowNoBackup: true }), {}, config);
    expect(first.report.checks.find((c) => c.check === 'recovery-point')).toMatchObject({ ok: true, summary: expect.stringMatching(/allowed for a first run/) });

    const { backupId } = await h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue })), {}, config);
    const now = await h.withWorker(() => runPreflight(h.client, config, 'production', h.taskQueue), {}, config);
    expect(now.report.checks.find((c) => c.check === 'recovery-point')).toMatchObject({ ok: true, facts: { backupId, rpoHours: 24 } });

    // The activities' clock, injected: 25 hours later the same backup misses a 24-hour objective.
    const later = () => new Date(Date.now() + 25 * 3_600_000);
    const late = await h.withWorker(() => runPreflight(h.client, config, 'production', h.taskQueue), { now: later }, config);
    const rpo = late.report.checks.find((c) => c.check === 'recovery-point')!;
    expect(rpo.ok).toBe(false);
    expect(rpo.hint).toMatch(/run a backup now/);
    expect(late.report.ok).toBe(false);
  });
});
