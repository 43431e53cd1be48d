// `npm run demo` from a clone inside a directory only its owner may enter (mode 0700, like root's home): the local
// stack comes up there, on ports of its own, and the demo backs up and verifies. Reuses this stack's built servers.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { localStackDir, repoRoot } from '../../src/config/local-stack';

/** Ports nothing listens on now (the OS's choice), so the clone's stack never meets the suite's. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

describe('a clone in a private directory', () => {
  const parent = mkdtempSync(join(tmpdir(), 'vpb-private-'));
  const clone = join(parent, 'vaultpam-backup');
  let env: NodeJS.ProcessEnv = {};
  let clusterDir: string | undefined;

  afterAll(() => {
    if (existsSync(join(clone, 'scripts', 'stack.sh'))) spawnSync('bash', [join(clone, 'scripts', 'stack.sh'), 'down'], { env, stdio: 'ignore', timeout: 120_000 });
    // A cluster kept outside the clone (see scripts/stack.sh pg_home) is this test's to remove too.
    if (clusterDir && !clusterDir.startsWith(clone)) rmSync(clusterDir, { recursive: true, force: true });
    rmSync(parent, { recursive: true, force: true });
  });

  it('runs npm run demo to a verified backup', async () => {
    chmodSync(parent, 0o700);
    // The repository's files as a clone has them, with this checkout's node_modules and built servers.
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const file of files) {
      if (!existsSync(join(repoRoot, file))) continue;
      mkdirSync(dirname(join(clone, file)), { recursive: true });
      cpSync(join(repoRoot, file), join(clone, file));
    }
    symlinkSync(join(repoRoot, 'node_modules'), join(clone, 'node_modules'));
    mkdirSync(join(clone, '.stack', 'bin'), { recursive: true });
    const builtBin = join(localStackDir(), 'bin');
    for (const name of existsSync(builtBin) ? readdirSync(builtBin) : []) symlinkSync(join(builtBin, name), join(clone, '.stack', 'bin', name));

    const [pg, pgProduction, temporal, ui, s3, sandbox, staging] = await freePorts(7);
    env = {
      ...process.env,
      VAULTPAM_STACK_DIR: '',
      VAULTPAM_BACKUP_CONFIG: '',
      VAULTPAM_PG_PORT: String(pg),
      VAULTPAM_PG_PRODUCTION_PORT: String(pgProduction),
      VAULTPAM_TEMPORAL_PORT: String(temporal),
      VAULTPAM_TEMPORAL_UI_PORT: String(ui),
      VAULTPAM_S3_PORT: String(s3),
      VAULTPAM_SANDBOX_PORT: String(sandbox),
      VAULTPAM_STAGING_PORT: String(staging),
    };
    delete env.VAULTPAM_STACK_DIR;
    delete env.VAULTPAM_BACKUP_CONFIG;

    const demo = spawnSync('npm', ['run', 'demo'], { cwd: clone, env, encoding: 'utf8', timeout: 400_000 });
    const status = spawnSync('bash', ['scripts/stack.sh', 'status'], { cwd: clone, env, encoding: 'utf8' });
    clusterDir = /cluster (\S+)\/data\)/.exec(status.stdout)?.[1];
    expect(demo.status, `${demo.stdout}\n${demo.stderr}`).toBe(0);
    expect(demo.stdout).toMatch(/Preflight of .*: PASSED/);
    expect(demo.stdout).toMatch(/Backup \S+ of sandbox: COMMITTED in primary, secondary/);
    expect(demo.stdout).toMatch(/Verify \S+: OK/);
    expect(demo.stderr).not.toMatch(/initdb failed/);
    // Its own stack, on its own ports.
    expect(status.stdout).toContain(`127.0.0.1:${pg}`);
    expect(clusterDir).toBeDefined();
    if (process.getuid?.() === 0) expect(clusterDir!.startsWith('/var/lib/vaultpam-backup/pg-')).toBe(true);
    else expect(clusterDir).toBe(join(clone, '.stack', 'pg'));
  }, 600_000);
});
