// Preflight on the real dev server: activities reach the real PostgreSQL, S3 server, sandbox control plane and locations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { localStackConfig } from '../../src/config/local-stack';
import { runPreflight } from '../../src/operations/preflight';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

describe('preflight workflow', () => {
  let h: TemporalHarness;
  beforeAll(async () => {
    h = await temporalHarness();
  });
  afterAll(async () => h?.close());

  it('finds PostgreSQL, the recordings bucket, the control plane and two regions of locations healthy', async () => {
    const { workflowId, report } = await h.withWorker(() => runPreflight(h.client, h.config, 'production', h.taskQueue));
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
    expect(description.searchAttributes.VaultpamDeployment).toEqual(['sandbox']);
    expect(description.searchAttributes.VaultpamStatus).toEqual(['passed']);
    expect(await description.staticSummary()).toBe('Preflight of sandbox (production)');
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
});
