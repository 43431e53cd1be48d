// `backup --wait` through the command line with its output in a pipe: plain progress lines with objects and bytes
// come before the result, and --json prints the result alone.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../src/config/local-stack';
import { ensureRecordings, isolatedConfig } from '../support/backup-fixture';

const bin = join(repoRoot, 'bin', 'vaultpam-backup.mjs');

/** Runs the command with stdout and stderr in one pipe (neither a terminal), so the order of their lines is kept. */
function runMerged(args: string[], timeoutMs = 300_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', 'exec "$@" 2>&1', 'vaultpam-backup', process.execPath, bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`vaultpam-backup ${args.join(' ')} ran over ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('progress of backup --wait off a terminal', () => {
  const config = isolatedConfig();
  let configPath: string;
  let worker: ChildProcess;

  beforeAll(async () => {
    // Enough recordings that the copy runs over several progress readings on a loaded machine.
    await ensureRecordings(400, 32_000);
    configPath = join(mkdtempSync(join(tmpdir(), 'vpb-progress-')), 'config.json');
    writeFileSync(configPath, JSON.stringify({ ...config, temporal: { ...config.temporal, taskQueue: `progress-${randomUUID()}` } }));
    worker = spawn(process.execPath, [bin, '--config', configPath, 'worker'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      worker.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('worker polling')) resolve();
      });
      worker.once('exit', (code) => reject(new Error(`the worker exited with ${code}: ${stderr}`)));
    });
  }, 240_000);
  afterAll(() => {
    worker?.kill('SIGTERM');
  });

  it('prints plain progress lines with objects and bytes before the result', async () => {
    const { code, output } = await runMerged(['--config', configPath, '--progress-interval', '1', 'backup', '--wait', '--reason', 'progress e2e']);
    expect(code, output).toBe(0);
    const lines = output.split('\n');
    const resultAt = lines.findIndex((l) => /^Backup \S+ of \S+: COMMITTED/.test(l));
    expect(resultAt, output).toBeGreaterThan(0);
    const progress = lines.slice(0, resultAt).filter((l) => l.startsWith('backup: '));
    // The copy's line: objects done of the snapshot's total, bytes done of its total.
    expect(progress.some((l) => /\b\d+\/\d+ objects · \d+(\.\d)? (B|KiB|MiB)\/\d+(\.\d)? (B|KiB|MiB)/.test(l)), output).toBe(true);
    expect(progress.length, output).toBeGreaterThanOrEqual(2);
    // No progress after the result, and no terminal control codes in a pipe.
    expect(lines.slice(resultAt).some((l) => l.startsWith('backup: ')), output).toBe(false);
    expect(output).not.toContain('\x1b');
  }, 300_000);

  it('prints the result alone with --json', async () => {
    const { code, output } = await runMerged(['--config', configPath, '--progress-interval', '1', 'backup', '--wait', '--json', '--reason', 'progress e2e json']);
    expect(code, output).toBe(0);
    const result = JSON.parse(output) as { backupId: string; recordings: { objects: number } };
    expect(result.recordings.objects).toBeGreaterThanOrEqual(400);
  }, 300_000);
});
