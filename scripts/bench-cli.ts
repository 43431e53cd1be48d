// Benchmark of the compiled build's start-up: wall time of `vaultpam-backup --help` and `backups list`, and an idle worker's memory with the prebuilt workflow bundle.
//
//   npm run bench -- --cli [--runs N] [--settle-seconds N] [--skip-sources]
//
// Each command is run N times in a row (a hyperfine-like loop: one warm-up run, then N timed ones) and the median is
// reported with the range. The worker runs on a task queue of its own against the local stack; its RSS is read from
// /proc once it polls and has settled. --skip-sources leaves out the same figures taken from the TypeScript
// sources through tsx (the development path), shown for comparison.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildState } from '../bin/build-freshness.mjs';
import { localStackConfig, repoRoot } from '../src/config/local-stack';

const TARGETS = { helpSeconds: 0.3, listSeconds: 1, workerRssMiB: 300 };
const bin = join(repoRoot, 'bin', 'vaultpam-backup.mjs');
const sourceEntry = join(repoRoot, 'src', 'cli', 'main.ts');

const { values } = parseArgs({
  options: {
    cli: { type: 'boolean', default: false },
    runs: { type: 'string', default: '10' },
    'settle-seconds': { type: 'string', default: '10' },
    'skip-sources': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const settleMs = Number(values['settle-seconds']) * 1000;

interface Timing {
  median: number;
  min: number;
  max: number;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Wall time of a command, in seconds, over `n` runs after one warm-up; fails loudly if the command does. */
function timeCommand(args: string[], n: number, env: NodeJS.ProcessEnv): Timing {
  const once = () => {
    const started = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return seconds;
  };
  once();
  const samples = Array.from({ length: n }, once);
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples) };
}

const rssMiB = (pid: number) => {
  const kib = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return kib / 1024;
};

/** Starts a worker, waits for it to poll, lets it settle, samples its RSS each second for 5 s, stops it. */
async function idleWorker(args: string[], env: NodeJS.ProcessEnv): Promise<{ readySeconds: number; rss: number; rssMax: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the worker did not poll within 180 s: ${stderr}`)), 180_000);
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        if (stderr.includes('worker polling')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`the worker exited (${code}): ${stderr}`)));
    });
    const readySeconds = (Date.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, settleMs));
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      samples.push(rssMiB(child.pid!));
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { readySeconds, rss: median(samples), rssMax: Math.max(...samples) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
  }
}

async function main(): Promise<void> {
  const state = buildState(repoRoot);
  if (state !== 'current') throw new Error(`dist/ is ${state}: run npm run build first (npm run bench -- --cli does)`);
  const dir = mkdtempSync(join(tmpdir(), 'vaultpam-bench-cli-'));
  const configPath = join(dir, 'config.json');
  const config = localStackConfig();
  writeFileSync(configPath, JSON.stringify({ ...config, temporal: { ...config.temporal, taskQueue: `bench-cli-${randomUUID()}` } }));
  const env = { ...process.env, VAULTPAM_BACKUP_CONFIG: configPath };
  const fmt = (t: Timing) => `${t.median.toFixed(3)} s (${t.min.toFixed(3)}-${t.max.toFixed(3)})`;
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  try {
    const bare = timeCommand(['-e', '0'], runs, env);
    const help = timeCommand([bin, '--help'], runs, env);
    const list = timeCommand([bin, 'backups', 'list'], runs, env);
    const listed = spawnSync(process.execPath, [bin, 'backups', 'list', '--json'], { env, encoding: 'utf8' });
    const backups = (JSON.parse(listed.stdout) as unknown[]).length;
    const worker = await idleWorker([bin, 'worker'], env);

    const lines = [
      `## Start-up of the compiled build (${new Date().toISOString().slice(0, 10)})`,
      '',
      `${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), load average ${loadavg()[0]!.toFixed(2)} at the start, Node ${process.version}; median of ${runs} runs after one warm-up (range in brackets).`,
      '',
      '| figure | compiled (dist/) | target |',
      '|---|---|---|',
      `| \`node -e 0\` (Node's own start, for scale) | ${fmt(bare)} | - |`,
      `| \`vaultpam-backup --help\` | ${fmt(help)} | < ${TARGETS.helpSeconds} s: ${mark(help.median < TARGETS.helpSeconds)} |`,
      `| \`vaultpam-backup backups list\` (${backups} backup(s) in the catalog) | ${fmt(list)} | < ${TARGETS.listSeconds} s: ${mark(list.median < TARGETS.listSeconds)} |`,
      `| worker: start to polling | ${worker.readySeconds.toFixed(1)} s | - |`,
      `| worker: RSS at rest (prebuilt workflow bundle) | ${worker.rss.toFixed(0)} MiB (max ${worker.rssMax.toFixed(0)}) | < ${TARGETS.workerRssMiB} MB: ${mark(worker.rss * 1.048576 < TARGETS.workerRssMiB)} |`,
    ];
    if (!values['skip-sources']) {
      const sourceRuns = Math.min(runs, 3);
      const tsx = ['--import', 'tsx', sourceEntry];
      const srcHelp = timeCommand([...tsx, '--help'], sourceRuns, env);
      const srcList = timeCommand([...tsx, 'backups', 'list'], sourceRuns, env);
      const srcWorker = await idleWorker([...tsx, 'worker'], env);
      lines.push(
        '',
        `From the TypeScript sources through tsx (the development path, \`npm run dev -- <args>\`; median of ${sourceRuns}), for comparison:`,
        '',
        '| figure | sources (tsx) |',
        '|---|---|',
        `| \`--help\` | ${fmt(srcHelp)} |`,
        `| \`backups list\` | ${fmt(srcList)} |`,
        `| worker: start to polling (workflows bundled at start) | ${srcWorker.readySeconds.toFixed(1)} s |`,
        `| worker: RSS at rest | ${srcWorker.rss.toFixed(0)} MiB (max ${srcWorker.rssMax.toFixed(0)}) |`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-cli: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
