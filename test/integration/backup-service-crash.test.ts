// Durability against the services: the Temporal server killed, or the S3 server killed, in the middle of a backup's
// recordings copy; once each is back, the same backup finishes and verifies.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../src/config/local-stack';
import { readManifest } from '../../src/catalog/catalog';
import { backupResult, startBackup } from '../../src/operations/backup';
import { createDependencies } from '../../src/runtime/dependencies';
import { connectClient } from '../../src/temporal/connect';
import { verifyChecksums } from '../../activities/verify';
import { ensureRecordings, isolatedConfig } from '../support/backup-fixture';
import type { Config } from '../../src/config/schema';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const service = (action: string, name: string) => execFileSync('bash', [join(repoRoot, 'scripts', 'stack.sh'), 'service', action, name], { stdio: 'inherit' });

describe('a backup survives a crashed service', () => {
  // One copy at a time, so the recordings copy lasts long enough to be interrupted; each test a deployment of its
  // own, so its backup is a first one that copies every recording rather than sharing them with an earlier one.
  const isolated = () => isolatedConfig((base) => ({ backup: { ...base.backup, concurrency: 1 } }));
  let h: TemporalHarness;

  beforeAll(async () => {
    h = await temporalHarness(isolated());
    await ensureRecordings(300, 16_000);
  }, 120_000);
  afterAll(async () => {
    service('start', 's3');
    service('start', 'temporal');
    await h?.close().catch(() => undefined);
  });

  async function crashDuringSync(name: 'temporal' | 's3', config: Config) {
    const handle = await startBackup(h.client, config, { taskQueue: h.taskQueue, reason: `crash ${name}` });
    for (;;) {
      const step = (await handle.describe()).searchAttributes.VaultpamStep?.[0];
      if (step === 'sync-recordings') break;
      if (step === 'verify' || step === 'done') throw new Error('the copy ended before the crash could be injected; seed more recordings');
      await new Promise((r) => setTimeout(r, 100));
    }
    service('kill', name);
    await new Promise((r) => setTimeout(r, 3000));
    service('start', name);
    return handle.workflowId;
  }

  it('finishes after the Temporal server is killed and restarted', async () => {
    const config = isolated();
    const deps = createDependencies(config);
    const result = await h.withWorker(async () => {
      const workflowId = await crashDuringSync('temporal', config);
      // A fresh client: the old one's connection died with the server.
      const client = await connectClient(config);
      try {
        return await backupResult(client.workflow.getHandle(workflowId));
      } finally {
        await client.connection.close();
      }
    }, {}, config);
    const manifest = await readManifest(deps.locations()[1]!, config.deployment.name, result.backupId);
    expect(manifest).toBeDefined();
    for (const location of deps.locations()) await verifyChecksums(location, manifest!.artifacts);
  });

  it('finishes after the S3 server is killed and restarted during the copy, retrying the copy', async () => {
    const config = isolated();
    const deps = createDependencies(config);
    const { result, attempts } = await h.withWorker(async () => {
      const workflowId = await crashDuringSync('s3', config);
      const handle = h.client.workflow.getHandle(workflowId);
      const result = await backupResult(handle);
      const history = await handle.fetchHistory();
      const attempts = (history.events ?? [])
        .filter((e) => e.activityTaskStartedEventAttributes)
        .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
      return { result, attempts };
    }, {}, config);
    // The activity that met the dead server failed and ran again.
    expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
    const manifest = (await readManifest(deps.locations()[0]!, config.deployment.name, result.backupId))!;
    expect(manifest.recordings.objects).toBeGreaterThanOrEqual(300);
    for (const location of deps.locations()) await verifyChecksums(location, manifest.artifacts);
  });
});
