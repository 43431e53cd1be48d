// Durability: a workflow's history, and a workflow still waiting for a worker, survive `stack down` + `stack up`.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../src/config/local-stack';
import { connectClient } from '../../src/temporal/connect';
import { runPreflight } from '../../src/operations/preflight';
import { DEPLOYMENT, OPERATION } from '../../workflows/search-attributes';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const stack = (action: string) => execFileSync('bash', [join(repoRoot, 'scripts', 'stack.sh'), action], { stdio: 'inherit' });

describe('the local stack persists Temporal', () => {
  let h: TemporalHarness;
  beforeAll(async () => {
    h = await temporalHarness(isolatedConfig());
  });
  afterAll(async () => h?.close());

  it('keeps a finished history and a pending workflow across stack down and stack up', async () => {
    const { workflowId, report } = await h.withWorker(() => runPreflight(h.client, h.config, 'production', h.taskQueue, { allowNoBackup: true }));
    expect(report.ok).toBe(true);
    const eventsBefore = (await h.client.workflow.getHandle(workflowId).fetchHistory()).events?.length ?? 0;
    expect(eventsBefore).toBeGreaterThan(5);

    // Started while no worker polls: it can only finish if the server remembers it across the restart.
    const pending = await h.client.workflow.start('preflightWorkflow', {
      taskQueue: h.taskQueue,
      workflowId: `${workflowId}-pending`,
      args: [{ target: 'production', deployment: h.config.deployment.name, allowNoBackup: true }],
      typedSearchAttributes: [
        { key: DEPLOYMENT, value: h.config.deployment.name },
        { key: OPERATION, value: 'preflight' },
      ],
    });
    await h.client.connection.close();

    stack('down');
    stack('up');

    const client = await connectClient(h.config);
    h.client = client;
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    expect(history.events?.length).toBe(eventsBefore);
    expect((await client.workflow.getHandle(workflowId).describe()).status.name).toBe('COMPLETED');

    const resumed = await h.withWorker(() => client.workflow.getHandle(pending.workflowId).result());
    expect(resumed.ok).toBe(true);
  });
});
