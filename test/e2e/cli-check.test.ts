// The repository check through the command line: a clean check exits 0, a bad slice is refused, a deleted blob is
// named with its recording and location (exit 1), and `check --repair` brings it back (exit 0).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/catalog/catalog';
import { readRecordingsIndex, type IndexEntry } from '../../src/catalog/recordings-index';
import { repoRoot } from '../../src/config/local-stack';
import { unwrapKey } from '../../src/crypto';
import { createDependencies } from '../../src/runtime/dependencies';
import { blobKey } from '../../src/storage';
import type { CheckReport } from '../../workflows/check-types';
import { isolatedConfig, seedSandbox } from '../support/backup-fixture';

const bin = join(repoRoot, 'bin', 'vaultpam-backup.mjs');

describe('vaultpam-backup check', () => {
  const config = isolatedConfig((base) => ({ temporal: { ...base.temporal, taskQueue: `e2e-check-${randomUUID()}` } }));
  const deps = createDependencies(config);
  let configPath: string;
  let worker: ChildProcess;

  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [bin, '--config', configPath, ...args], { encoding: 'utf8', timeout: 240_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    await seedSandbox('production', { resources: 2, auditEntries: 10, recordings: 4, recordingBytes: 3_000 });
    configPath = join(mkdtempSync(join(tmpdir(), 'vpb-e2e-check-')), 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    worker = spawn(process.execPath, [bin, '--config', configPath, 'worker'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      worker.stderr!.on('data', (d: Buffer) => d.toString().includes('worker polling') && resolve());
      worker.once('exit', (code) => reject(new Error(`the worker exited with ${code}`)));
    });
  }, 180_000);
  afterAll(() => {
    worker?.kill('SIGTERM');
  });

  it('checks, names a missing blob with its recording and location, and repairs it', async () => {
    const backup = cli('backup', '--wait', '--json', '--reason', 'e2e check');
    expect(backup.code, backup.stderr).toBe(0);
    const { backupId } = JSON.parse(backup.stdout) as { backupId: string };

    const clean = cli('check', '--read-data', '--wait', '--json');
    expect(clean.code, clean.stderr).toBe(0);
    expect(JSON.parse(clean.stdout) as CheckReport).toMatchObject({ ok: true, readData: 'all', problemCount: 0 });

    const badSlice = cli('check', '--read-data-subset', '4/3');
    expect(badSlice.code).toBe(1);
    expect(badSlice.stderr).toMatch(/--read-data-subset "4\/3" must be n\/m with 1 <= n <= m/);

    const [primary, secondary] = deps.locations();
    const manifest = (await readManifest(primary!, config.deployment.name, backupId))!;
    let victim: IndexEntry | undefined;
    for await (const e of readRecordingsIndex(primary!, manifest.artifacts.recordingsIndex, unwrapKey(manifest.encryption.dataKey, deps.keyRing()))) victim ??= e;
    await secondary!.delete([blobKey(config.deployment.name, victim!.blob)]);

    const found = cli('check', '--wait');
    expect(found.code).toBe(1);
    expect(found.stdout).toMatch(/1 PROBLEM\(S\) REMAIN/);
    expect(found.stdout).toContain(`blob-missing        secondary (backup ${backupId}, recording ${victim!.key}): it is missing`);

    const repaired = cli('check', '--repair', '--wait');
    expect(repaired.code, repaired.stdout).toBe(0);
    expect(repaired.stdout).toMatch(/-> repaired from primary/);

    const status = cli('check', 'status', '--json');
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as { report: CheckReport }).report).toMatchObject({ ok: true, repair: true, repairedCount: 1 });
  });
});
