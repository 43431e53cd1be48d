// Crash points: a no-op unless the environment names them; `name@N` kills the process the N-th time only, counted in
// a directory that outlives it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../src/config/local-stack';
import { FAULT_POINT_DIR_ENV, FAULT_POINT_ENV } from '../../src/runtime/fault-points';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Runs a process that reaches the point `p` three times, printing the count before each; returns what it printed and its end. */
function reach(env: Record<string, string>) {
  const script = `import { faultPoint } from './src/runtime/fault-points.ts'; for (let i = 1; i <= 3; i++) { process.stdout.write(i + ' '); faultPoint('p'); } process.stdout.write('end');`;
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, env: { ...process.env, ...env }, encoding: 'utf8' });
  return { stdout: result.stdout, signal: result.signal };
}

describe('fault points', () => {
  it('do nothing when the environment names no point, or another one', () => {
    expect(reach({ [FAULT_POINT_ENV]: '' })).toEqual({ stdout: '1 2 3 end', signal: null });
    expect(reach({ [FAULT_POINT_ENV]: 'q' })).toEqual({ stdout: '1 2 3 end', signal: null });
  });

  it('kill with SIGKILL the first time a named point is reached', () => {
    expect(reach({ [FAULT_POINT_ENV]: 'p' })).toEqual({ stdout: '1 ', signal: 'SIGKILL' });
  });

  it('kill only at the N-th time, counting across processes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fault-points-'));
    dirs.push(dir);
    const env = { [FAULT_POINT_ENV]: 'p@2', [FAULT_POINT_DIR_ENV]: dir };
    expect(reach(env)).toEqual({ stdout: '1 2 ', signal: 'SIGKILL' });
    // The restarted process has passed the second time already: it runs through.
    expect(reach(env)).toEqual({ stdout: '1 2 3 end', signal: null });
  });
});
