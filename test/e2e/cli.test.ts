// The whole product through its command line: a worker process, backup, catalog, verify, an approved restore, and
// bad input refused with a clear error and an exit code, all against the real stack.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../src/config/local-stack';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { confirmRestore } from '../../src/operations/restore';
import { connectClient } from '../../src/temporal/connect';
import { TEST_APPROVER } from '../support/approved-restore';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';

const bin = join(repoRoot, 'bin', 'vaultpam-backup.mjs');

describe('vaultpam-backup command line', () => {
  let f: RestoreFixture;
  let configPath: string;
  let testConfig: Config;
  let worker: ChildProcess;

  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [bin, '--config', configPath, ...args], { encoding: 'utf8', timeout: 240_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    f = await restoreFixture();
    await f.seed({ resources: 8, auditEntries: 50, recordings: 12, recordingBytes: 4_000 });
    const dir = mkdtempSync(join(tmpdir(), 'vpb-e2e-'));
    configPath = join(dir, 'config.json');
    testConfig = parseConfig({ ...f.config, temporal: { ...f.config.temporal, taskQueue: `e2e-${randomUUID()}` } });
    writeFileSync(configPath, JSON.stringify(testConfig));
    worker = spawn(process.execPath, [bin, '--config', configPath, 'worker'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      worker.stderr!.on('data', (d: Buffer) => d.toString().includes('worker polling') && resolve());
      worker.once('exit', (code) => reject(new Error(`the worker exited with ${code}`)));
    });
  }, 180_000);
  afterAll(async () => {
    worker?.kill('SIGTERM');
    await f?.destroy();
  });

  it('refuses bad flags and a bad configuration with a clear error, changing nothing', () => {
    const scope = cli('restore', '--backup', '20261127T000000Z-000000', '--scope', 'everything');
    expect(scope.code).toBe(1);
    expect(scope.stderr).toMatch(/scope "everything" is neither "full" nor "resource:<id>"/);
    const both = cli('restore', '--backup', '20261127T000000Z-000000', '--at', '2026-11-27T00:00:00Z');
    expect(both.stderr).toMatch(/either --backup <id> or --at <time>, not both/);
    const target = cli('preflight', '--target', 'moon');
    expect(target.code).not.toBe(0);
    expect(target.stderr).toMatch(/Allowed choices are production, staging/);
    const badConfig = join(mkdtempSync(join(tmpdir(), 'vpb-e2e-bad-')), 'config.json');
    writeFileSync(badConfig, JSON.stringify({ ...f.config, locations: [] }));
    const r = spawnSync(process.execPath, [bin, '--config', badConfig, 'backups', 'list'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/VPB_ERR_CONFIG_INVALID: .*locations: configure at least one backup location/);
  });

  it('backs up, lists, verifies, and restores after a confirmation by another principal', async () => {
    const backup = cli('backup', '--wait', '--json', '--reason', 'e2e');
    expect(backup.code, backup.stderr).toBe(0);
    const result = JSON.parse(backup.stdout) as { backupId: string; locations: string[]; recordings: { objects: number } };
    expect(result.locations).toHaveLength(2);
    expect(result.recordings.objects).toBeGreaterThanOrEqual(12);

    const list = JSON.parse(cli('backups', 'list', '--json').stdout) as { backupId: string }[];
    expect(list.map((b) => b.backupId)).toEqual([result.backupId]);

    const verify = cli('backups', 'verify', result.backupId, '--deep', '--json');
    expect(verify.code, verify.stderr).toBe(0);
    const report = JSON.parse(verify.stdout) as { ok: boolean; locations: { level?: string }[] };
    expect(report.ok).toBe(true);
    expect(report.locations.map((l) => l.level)).toEqual(['deep', 'standard']);

    const missing = cli('backups', 'verify', '20200101T000000Z-abcdef');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/VPB_ERR_STEP_FAILED: .*no location holds a manifest of backup 20200101T000000Z-abcdef/);

    // --json carries every id the next command needs.
    const asked = cli('restore', '--backup', result.backupId, '--json');
    expect(asked.code, asked.stderr).toBe(0);
    const prompt = JSON.parse(asked.stdout) as { workflowId: string; runId: string; restoreId: string; backupId: string; lossReportDigest: string; confirmCommand: string; status: string };
    expect(prompt).toMatchObject({ backupId: result.backupId, status: 'awaiting-confirmation', lossReportDigest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(prompt.workflowId).toMatch(/^restore-/);
    expect(prompt.runId).toBeTruthy();
    expect(prompt.restoreId).toBeTruthy();
    expect(prompt.confirmCommand).toBe(`vaultpam-backup restore confirm ${prompt.workflowId} --backup ${result.backupId}`);
    const workflowId = prompt.workflowId;
    // For people: both directions of the loss report.
    const shown = cli('restore', 'report', workflowId);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/BRINGS BACK\s+LOSES \(newer than the backup\)/);
    expect(shown.stdout).toMatch(/resources\s+0\s+0 created, 0 modified/);
    const wrong = cli('restore', 'confirm', workflowId!, '--backup', '20200101T000000Z-abcdef');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/confirmation refused: wrong backup id/);
    // The command line signs as its local user, who requested this production restore: it cannot approve it.
    const own = cli('restore', 'confirm', workflowId!, '--backup', result.backupId);
    expect(own.code).toBe(1);
    expect(own.stderr).toMatch(/confirmation refused: a restore cannot be approved by the principal who requested it \(local:[^)]+\): another approver must confirm it\. This command signs as local:\S+, who requested it: approve as another principal through the API with an approver's token/);
    // Another principal approves (as the API would, for an approver's credential); the command line follows the restore.
    const client = await connectClient(testConfig);
    try {
      await confirmRestore(client, testConfig, workflowId!, { backupId: result.backupId, lossReportDigest: prompt.lossReportDigest, principal: TEST_APPROVER });
    } finally {
      await client.connection.close();
    }
    const deadline = Date.now() + 180_000;
    let confirmed = cli('restore', 'report', workflowId!);
    while (!/COMPLETED|ROLLED-BACK|FAILED/.test(confirmed.stdout) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      confirmed = cli('restore', 'report', workflowId!);
    }
    expect(confirmed.code, confirmed.stderr + confirmed.stdout).toBe(0);
    expect(confirmed.stdout).toMatch(/COMPLETED/);
    expect(confirmed.stdout).toMatch(/requested by\s+local:\S+ \(signed\)/);
    expect(confirmed.stdout).toMatch(/approvals\s+1 of 1 required: test:approver at /);
    expect(confirmed.stdout).toMatch(/RTO\s+\d+\.\d s/);
    const kept = /previous database kept as (\S+)/.exec(confirmed.stdout)?.[1];
    expect(kept).toBeDefined();

    const cleanup = cli('restore', 'cleanup', workflowId!, '--yes');
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(cleanup.stdout).toContain(`dropped ${kept}`);
  });
});
