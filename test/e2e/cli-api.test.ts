// The command line through the HTTP API (--api): the caller's token decides who acts, the output is the direct mode's,
// the API's refusals reach the terminal as they are.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app';
import { createAuthenticator } from '../../src/auth/authenticate';
import { repoRoot } from '../../src/config/local-stack';
import { isolatedConfig } from '../support/backup-fixture';
import { apiCaller, apiSectionFor, secretOf } from '../support/api-callers';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const bin = join(repoRoot, 'bin', 'vaultpam-backup.mjs');
const operator = apiCaller('cli-olivia', ['viewer', 'operator', 'restorer']);
const viewer = apiCaller('cli-victor', ['viewer']);

describe('command line through the API', () => {
  let h: TemporalHarness;
  let app: ReturnType<typeof buildApi>;
  let url: string;
  let configPath: string;

  /** Runs the command without blocking this process, whose worker must keep running meanwhile. */
  const cli = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [bin, '--config', configPath, '--api', url, ...args], { env: { ...process.env, VAULTPAM_API_TOKEN: '', ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });

  beforeAll(async () => {
    h = await temporalHarness(isolatedConfig(() => ({ api: apiSectionFor(operator, viewer) })));
    app = buildApi({ config: h.config, client: h.client, taskQueue: h.taskQueue });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    configPath = join(mkdtempSync(join(tmpdir(), 'vpb-cli-api-')), 'config.json');
    writeFileSync(configPath, JSON.stringify(h.config));
  });
  afterAll(async () => {
    await h?.client.workflow.getHandle(`restore-${h.config.deployment.name}`).terminate('test over').catch(() => undefined);
    await app?.close();
    await h?.close();
  });

  it('creates a token that is printed once and stored hashed, lists it without its secret, and revokes it', async () => {
    const tokensFile = join(mkdtempSync(join(tmpdir(), 'vpb-tokens-cli-')), 'api-tokens.json');
    const created = await cli(['tokens', 'create', '--principal', 'carol', '--roles', 'viewer,approver', '--expires', '30d', '--file', tokensFile]);
    expect(created.status, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^vpb_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const id = token.split('_')[1]!;
    expect(created.stderr).toMatch(new RegExp(`token ${id} for carol \\(viewer, approver\\), expires \\d{4}-.*It will not be shown again`, 's'));
    expect(statSync(tokensFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(tokensFile, 'utf8')).not.toContain(secretOf(token));
    const authenticator = createAuthenticator({ mode: 'tokens', tokensFile });
    expect(await authenticator.authenticate(`Bearer ${token}`)).toMatchObject({ ok: true, principal: { id: 'carol', roles: ['viewer', 'approver'], credentialId: id } });

    const listed = await cli(['tokens', 'list', '--file', tokensFile]);
    expect(listed.stdout).toMatch(new RegExp(`^${id}  carol  viewer,approver\\s+active until \\d{4}-`, 'm'));
    expect(listed.stdout).not.toContain(secretOf(token));

    const revoked = await cli(['tokens', 'revoke', id, '--file', tokensFile]);
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(await authenticator.authenticate(`Bearer ${token}`)).toMatchObject({ ok: false, reason: expect.stringMatching(new RegExp(`token ${id} is revoked`)) });
    const unknownRole = await cli(['tokens', 'create', '--principal', 'dave', '--roles', 'viewer,superuser', '--file', tokensFile]);
    expect(unknownRole.status).not.toBe(0);
    expect(unknownRole.stderr).toMatch(/unknown role superuser: give a comma-separated list of viewer, operator, restorer, approver, admin/);
  });

  it('refuses without a token, and passes on the API\'s 403 to a caller without the role', async () => {
    const none = await cli(['backup']);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(new RegExp(`the API at ${url} needs your own token: set VAULTPAM_API_TOKEN or give --token-file`));
    const refused = await cli(['backup'], { VAULTPAM_API_TOKEN: viewer.token });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/VPB_ERR_FORBIDDEN: Principal cli-victor may not POST \/v1\/backups: it needs the role operator and holds viewer/);
    expect(refused.stderr).not.toContain(viewer.token);
  });

  it('backs up with --wait through the API, printing the committed backup, recorded as requested by the token\'s principal', async () => {
    const tokenFile = join(mkdtempSync(join(tmpdir(), 'vpb-token-')), 'token');
    writeFileSync(tokenFile, `${operator.token}\n`, { mode: 0o600 });
    const run = await h.withWorker(() => cli(['--token-file', tokenFile, 'backup', '--wait', '--reason', 'through the API']));
    expect(run.status, run.stderr).toBe(0);
    const backupId = /^Backup (\S+) of /m.exec(run.stdout)?.[1];
    expect(run.stdout).toMatch(new RegExp(`Backup ${backupId} of ${h.config.deployment.name}: COMMITTED in primary, secondary`));
    const list = (await app.inject({ method: 'GET', url: '/v1/backups', headers: viewer.headers })).json() as { backups: { backupId: string; manifest: { requestedBy?: string; reason?: string } }[] };
    expect(list.backups.find((b) => b.backupId === backupId)?.manifest).toMatchObject({ requestedBy: 'cli-olivia' });

    // A restore through the API shows its loss report; confirming it needs the approver role the operator lacks.
    const restore = await h.withWorker(() => cli(['restore', '--backup', backupId!], { VAULTPAM_API_TOKEN: operator.token }));
    expect(restore.status, restore.stderr).toBe(0);
    const confirm = /To go ahead: vaultpam-backup restore confirm (\S+) --backup (\S+)/.exec(restore.stdout);
    expect(confirm?.[2]).toBe(backupId);
    const refused = await h.withWorker(() => cli(['restore', 'confirm', confirm![1]!, '--backup', backupId!], { VAULTPAM_API_TOKEN: operator.token }));
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/VPB_ERR_FORBIDDEN: Principal cli-olivia may not POST \/v1\/restores\/:workflowId\/confirm: it needs the role approver and holds viewer, operator, restorer/);
    expect((await h.client.workflow.getHandle(confirm![1]!).describe()).status.name).toBe('RUNNING');
  });
  it('stops waiting through the API when no worker polls its task queue, naming it', async () => {
    // An API whose task queue no worker has ever polled: the backup is started, and waits in Temporal.
    const taskQueue = `no-worker-${Date.now().toString(36)}`;
    // A deployment of its own: the restore the test before left awaiting approval holds the other one's lock.
    const config = { ...h.config, deployment: { ...h.config.deployment, name: `${h.config.deployment.name}-nw` } };
    const lonely = buildApi({ config, client: h.client, taskQueue });
    const lonelyUrl = await lonely.listen({ host: '127.0.0.1', port: 0 });
    try {
      const started = Date.now();
      const run = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [bin, '--config', configPath, '--api', lonelyUrl, 'backup', '--wait'], { env: { ...process.env, VAULTPAM_API_TOKEN: operator.token } });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (status) => resolve({ status, stderr }));
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`VPB_ERR_NO_WORKER: No worker polls the task queue "${taskQueue}" \\(namespace default\\): workflow backup-\\S+ waits for one`));
      expect(run.stderr).toContain('vaultpam-backup worker');
      console.info(`backup --wait through the API with no worker ended after ${Date.now() - started} ms`);
    } finally {
      await h.client.workflow.getHandle(`backup-${config.deployment.name}`).terminate('test over: no worker was meant to run it').catch(() => undefined);
      await lonely.close();
    }
  });
});
