// docs/alerts.yml against the metrics the code registers: every vaultpam_* name an alert reads exists, and the four
// alerts operators rely on are there.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../../src/config/local-stack';
import { createActivityMetrics } from '../../src/metrics/activity-metrics';
import { createCatalogMetrics } from '../../src/metrics/catalog-metrics';

describe('docs/alerts.yml', () => {
  const rules = (parse(readFileSync(`${repoRoot}/docs/alerts.yml`, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);

  it('reads only metrics the API or the workers register', async () => {
    const catalog = createCatalogMetrics({ deployment: 'd', locations: () => [], now: () => new Date() });
    const registered = new Set([...(await catalog.getMetricsAsJSON()), ...(await createActivityMetrics().registry.getMetricsAsJSON())].map((m) => m.name));
    const used = new Set(rules.flatMap((r) => r.expr.match(/vaultpam_[a-z_]+/g) ?? []));
    expect(used.size).toBeGreaterThan(4);
    for (const name of used) expect(registered, `${name} is read by an alert`).toContain(name);
  });

  it('alerts on the recovery point, the drill, the drill RTO and a failing check', () => {
    const byName = new Map(rules.map((r) => [r.alert, r.expr]));
    expect(byName.get('VaultpamRecoveryPointOver24h')).toMatch(/vaultpam_backup_newest_restorable_moment_age_seconds > 24 \* 3600/);
    expect(byName.get('VaultpamNoDrillIn92Days')).toMatch(/> 92 \* 86400/);
    expect(byName.get('VaultpamDrillRtoOver4h')).toMatch(/vaultpam_restore_drill_last_rto_seconds > 4 \* 3600/);
    expect(byName.get('VaultpamCheckFailing')).toMatch(/vaultpam_check_last_ok == 0/);
  });
});
