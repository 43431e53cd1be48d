// A recordings checkpoint in an OS process of its own, so a fault point can SIGKILL it mid-way as a machine failure would.
//
// As an entry point it reads { "config": {...}, "deployment": "..." } from $VAULTPAM_TEST_CHECKPOINT, runs one
// checkpoint and prints its result as one JSON line. Imported, it offers runCheckpointProcess() to spawn one.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runRecordingsCheckpoint, type CheckpointRecordingsResult } from '../../activities/checkpoint-recordings';
import { parseConfig } from '../../src/config/load';
import { repoRoot } from '../../src/config/local-stack';
import type { Config } from '../../src/config/schema';
import { createDependencies } from '../../src/runtime/dependencies';
import { isEntryPoint } from '../../src/runtime/entry-point';

const CHECKPOINT_ENV = 'VAULTPAM_TEST_CHECKPOINT';
const entryPath = fileURLToPath(import.meta.url);

/** Runs one checkpoint in a child process; resolves with how it ended and, when it finished, its result. */
export function runCheckpointProcess(
  config: Config,
  deployment: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; result?: CheckpointRecordingsResult; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', entryPath], {
    cwd: repoRoot,
    env: { ...process.env, ...env, [CHECKPOINT_ENV]: JSON.stringify({ config, deployment }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      const line = stdout.trim().split('\n').at(-1);
      resolve({ code, signal, stderr, ...(code === 0 && line ? { result: JSON.parse(line) as CheckpointRecordingsResult } : {}) });
    });
  });
}

async function main(): Promise<void> {
  const { config, deployment } = JSON.parse(process.env[CHECKPOINT_ENV] ?? '{}') as { config: unknown; deployment: string };
  const result = await runRecordingsCheckpoint(createDependencies(parseConfig(config)), { deployment });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (isEntryPoint(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`checkpoint process failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
