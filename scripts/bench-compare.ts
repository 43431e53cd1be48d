// The product side by side with rclone (recordings) and pg_dump/pg_restore (database) on the same data, and at scale.
//
//   npm run bench -- --compare [--base-recordings N] [--small-count N] [--small-kib N] [--large-count N] [--large-mib N]
//                              [--audit N] [--keep]
//   npm run bench -- --scale [--scale-recordings N] [--scale-audit N] [--keep]
//   npm run bench -- --scale --scale-audit 0 --scale-recordings N --nothing-new [--before-root DIR]
//
// The workers run as child processes (the compiled worker, `dist/cli.js worker`), so the RSS sampled from /proc is a worker's alone;
// this process only starts workflows, runs the baselines and reads the histories. rclone is the Debian package,
// installed with apt-get when missing. Its configuration file lives in a private temporary directory and is removed
// at the end; no secret is printed.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdtemp, readFile, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg, release, tmpdir, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { DUMP_COMPRESS_LEVEL } from '../activities/dump';
import { openArtifact } from '../src/catalog/artifacts';
import { readManifest } from '../src/catalog/catalog';
import { databaseParts } from '../src/catalog/database-parts';
import { parseConfig } from '../src/config/load';
import { localStackConfig, localStackDir, localStackPorts, repoRoot } from '../src/config/local-stack';
import type { Config, ConfigInput } from '../src/config/schema';
import { unwrapKey } from '../src/crypto';
import { backupResult, startBackup } from '../src/operations/backup';
import { restoreWorkflowId } from '../src/operations/restore';
import { runVerify } from '../src/operations/verify';
import { createDatabase, dropDatabase, findPgTool, restoreDump, withClient } from '../src/postgres';
import { createDependencies, type Dependencies } from '../src/runtime/dependencies';
import { connectClient } from '../src/temporal/connect';
import { createSandboxInstance, type SandboxInstance } from '../sandbox/instance';
import { emptyBucket } from '../sandbox/recordings';
import type { BackupResult } from '../workflows/backup-types';
import type { RestoreInput, RestoreReport } from '../workflows/restore-types';
import { DEPLOYMENT, OPERATION } from '../workflows/search-attributes';

const KIB = 1024;
const MIB = 1024 * 1024;
const SAMPLE_MS = 100;
const TRANSFERS = 8;
/**
 * The --scale recordings are dated over a year, as a deployment's are (its keys are sessions/<yyyy>/<mm>/<dd>/…): a
 * million in one day's folder would time the S3 server's listing of one huge directory, not the backup.
 */
const SCALE_BACKDATE_DAYS = 365;
const PG_RESTORE_JOBS = 2;

const USAGE = `usage: npm run bench -- --compare [options]   |   npm run bench -- --scale [options]

--compare: the same jobs, on the same data, by the product and by its baselines
  --base-recordings N  recordings present before the first backup             default 1000
  --small-count N      small recordings new since the last backup              default 2000
  --small-kib N        size of each small recording, KiB                       default 64
  --large-count N      large recordings new since the last backup              default 8
  --large-mib N        size of each large recording, MiB                       default 64
  --audit N            audit-log rows (the bulk of the dump)                   default 200000

--scale: sizes past the default benchmark, each piece on an instance of its own, removed before the next
  --scale-recordings N recordings of 1 KiB: a full backup with 1 worker, rclone, then 2 workers  default 1000000 (0 skips)
  --scale-audit N      audit-log rows: the dump against pg_dump, the restore against pg_restore  default 40000000 (0 skips)
  --scale-tables N     large tables in that database: the audit log and N-1 copies of it        default 1
  --single-dump        the dump as one archive (backup.parallelDump off): the path of earlier versions
  --nothing-new        for --scale-recordings: after the full backup, an incremental backup with nothing new,
                       step by step, and the bucket's listing alone (instead of rclone and the 2-worker run)
  --before-root DIR    with --nothing-new: a checkout of other code (its node_modules in place) whose worker runs
                       the same incremental first, on the same data: before and after in one run

  --keep               leave the sandbox instances, the backups and rclone's copies in place
  --profile-workers DIR each worker writes a V8 CPU profile of its whole life into DIR (open it in Chrome's
                       DevTools, Performance tab): where a missed target's time went`;

// ---------------------------------------------------------------------------------------------- options

interface CompareOptions {
  baseRecordings: number;
  smallCount: number;
  smallBytes: number;
  largeCount: number;
  largeBytes: number;
  audit: number;
}

interface ScaleOptions {
  recordings: number;
  audit: number;
  /** Large tables in the --scale-audit database: the audit log and tables-1 copies of it. */
  tables: number;
  /** One dump archive (no table parts): the dump and restore path of earlier versions, for before/after figures. */
  singleDump: boolean;
  /** The recordings piece: an incremental backup with nothing new after the full one, instead of rclone and 2 workers. */
  nothingNew: boolean;
  /** With nothingNew: a checkout of other code whose worker runs that incremental first (before/after on the same data). */
  beforeRoot?: string;
}

interface ComparisonOptions {
  compare?: CompareOptions;
  scale?: ScaleOptions;
  keep: boolean;
}

/** A failure with a message that says it all (bad flag, missing tool): printed without a stack trace. */
class BenchSetupError extends Error {}

/** True when the arguments ask for this module rather than the default benchmark. */
export function wantsComparison(argv: readonly string[]): boolean {
  return argv.some((arg) => ['--compare', '--scale', '--scale-recordings', '--scale-audit'].includes(arg.split('=')[0]!));
}

function parseComparisonOptions(argv: string[]): ComparisonOptions | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        compare: { type: 'boolean', default: false },
        scale: { type: 'boolean', default: false },
        'base-recordings': { type: 'string' },
        'small-count': { type: 'string' },
        'small-kib': { type: 'string' },
        'large-count': { type: 'string' },
        'large-mib': { type: 'string' },
        audit: { type: 'string' },
        'scale-recordings': { type: 'string' },
        'scale-audit': { type: 'string' },
        'scale-tables': { type: 'string' },
        'single-dump': { type: 'boolean', default: false },
        'nothing-new': { type: 'boolean' },
        'before-root': { type: 'string' },
        keep: { type: 'boolean', default: false },
        'profile-workers': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    throw new BenchSetupError(`${(error as Error).message}; see --compare --help`);
  }
  if (values.help) return undefined;
  const count = (flag: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new BenchSetupError(`--${flag}: give a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`);
    return n;
  };
  const compareOnly = ['base-recordings', 'small-count', 'small-kib', 'large-count', 'large-mib', 'audit'].filter((f) => (values as Record<string, unknown>)[f] !== undefined);
  const scaleOnly = ['scale-recordings', 'scale-audit', 'scale-tables', 'nothing-new', 'before-root'].filter((f) => (values as Record<string, unknown>)[f] !== undefined);
  if (!values.compare && compareOnly.length) throw new BenchSetupError(`--${compareOnly[0]} sizes the --compare run: add --compare`);
  if (!values.scale && scaleOnly.length) throw new BenchSetupError(`--${scaleOnly[0]} sizes the --scale run: add --scale`);
  const options: ComparisonOptions = { keep: values.keep === true };
  if (values['profile-workers'] !== undefined) {
    if (values['profile-workers'].trim() === '') throw new BenchSetupError('--profile-workers: give the directory the CPU profiles go to');
    workerProfileDir = values['profile-workers'];
  }
  if (values.compare) {
    options.compare = {
      baseRecordings: count('base-recordings', values['base-recordings'], 1000, 1, 10_000_000),
      smallCount: count('small-count', values['small-count'], 2000, 1, 10_000_000),
      smallBytes: count('small-kib', values['small-kib'], 64, 1, 1024 * 1024) * KIB,
      largeCount: count('large-count', values['large-count'], 8, 1, 10_000),
      // The sandbox seeds a recording in one buffer, and its seed schema caps it at 1 GiB.
      largeBytes: count('large-mib', values['large-mib'], 64, 1, 1024) * MIB,
      audit: count('audit', values.audit, 200_000, 0, 100_000_000),
    };
  }
  if (values.scale) {
    options.scale = {
      recordings: count('scale-recordings', values['scale-recordings'], 1_000_000, 0, 10_000_000),
      audit: count('scale-audit', values['scale-audit'], 40_000_000, 0, 1_000_000_000),
      tables: count('scale-tables', values['scale-tables'], 1, 1, 16),
      singleDump: values['single-dump'] === true,
      nothingNew: values['nothing-new'] === true,
      ...(values['before-root'] !== undefined ? { beforeRoot: values['before-root'] } : {}),
    };
    if (options.scale.beforeRoot !== undefined && !options.scale.nothingNew) throw new BenchSetupError('--before-root is for the --nothing-new run: add --nothing-new');
    if (options.scale.nothingNew && options.scale.recordings === 0) throw new BenchSetupError('--nothing-new needs recordings: give --scale-recordings N (N > 0)');
    if (options.scale.recordings === 0 && options.scale.audit === 0) throw new BenchSetupError('--scale-recordings 0 and --scale-audit 0 leave nothing to run');
  }
  return options;
}

// ---------------------------------------------------------------------------------------------- formatting

const seconds = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
const mib = (bytes: number) => `${(bytes / MIB).toFixed(bytes < 10 * MIB ? 2 : 1)} MiB`;
const size = (bytes: number) => (bytes >= MIB ? `${bytes / MIB} MiB` : `${bytes / KIB} KiB`);
const ratio = (product: number, baseline: number) => (baseline > 0 ? product / baseline : Number.POSITIVE_INFINITY);
const load = () => loadavg().map((n) => n.toFixed(2)).join(' ');
const progress = (text: string) => console.error(`bench: ${text}`);

function markdownTable(head: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (align[i] === 'r' ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------- child processes

interface ProcessRun {
  code: number | null;
  output: string;
  ms: number;
}

/** Runs a command to its end, its output captured (never printed: rclone's may name its configuration). */
async function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessRun> {
  const started = performance.now();
  const child = spawn(command, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  // Only the tail is kept: a long run's chatter must not grow this process.
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  return { code, output, ms: performance.now() - started };
}

async function runOrFail(what: string, command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<ProcessRun> {
  const result = await run(command, args, env);
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.output.trim().split('\n').slice(-15).join('\n')}`);
  return result;
}

/** The sandbox's own seeding CLI, in a child process (it writes objects straight into the bucket, concurrently). */
async function seedInstance(instance: SandboxInstance, flags: Record<string, number>): Promise<number> {
  const args = ['--import', 'tsx', join(repoRoot, 'sandbox', 'seed.ts'), '--config', instance.configPath];
  for (const [flag, value] of Object.entries(flags)) args.push(`--${flag}`, String(value));
  return (await runOrFail(`seeding ${instance.name}`, process.execPath, args)).ms;
}

const onlyRecordings = (count: number, bytes: number, concurrency: number) => ({
  organisations: 0,
  resources: 0,
  connectors: 0,
  audit: 0,
  recordings: count,
  'recording-bytes': bytes,
  concurrency,
});

// ---------------------------------------------------------------------------------------------- rclone

/** rclone on PATH, else the Debian package; a clear error when neither works. */
function ensureRclone(): string {
  const present = () => spawnSync('rclone', ['version'], { encoding: 'utf8' });
  let check = present();
  if (check.status === 0) return check.stdout.split('\n')[0]!.trim();
  progress('rclone is not installed: apt-get install -y rclone');
  const apt = (...args: string[]) => spawnSync('apt-get', args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  let install = apt('install', '-y', 'rclone');
  if (install.status !== 0 && !install.error) {
    // A fresh machine has no package lists yet.
    progress('apt-get install failed; apt-get update once, then again');
    apt('update');
    install = apt('install', '-y', 'rclone');
  }
  check = present();
  if (check.status === 0) return check.stdout.split('\n')[0]!.trim();
  const why = install.error
    ? `apt-get could not run (${(install.error as NodeJS.ErrnoException).code ?? install.error.message})`
    : `apt-get install -y rclone exited ${install.status}: ${(install.stderr || install.stdout || '').trim().split('\n').slice(-3).join(' / ')}`;
  throw new BenchSetupError(`--compare and --scale need rclone as their baseline, and it could not be installed: ${why}. Install the Debian package rclone (apt-get install rclone, as root) and run again.`);
}

/**
 * Remotes for the baseline: `src` the S3 server, `s3crypt` a crypt remote over a prefix of the primary location's bucket,
 * `fscrypt` a crypt remote over a directory beside the secondary location's. Both targets are this run's alone.
 */
class RcloneRemotes {
  /**
   * rclone's S3 client fails outright when AWS_CA_BUNDLE is set (it cannot add a CA to its own HTTP transport); the
   * endpoint is plain HTTP on 127.0.0.1, so no CA is needed, and rclone reads nothing else from AWS_* here.
   */
  private static readonly env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'AWS_CA_BUNDLE'));

  private constructor(
    readonly dir: string,
    private readonly configFile: string,
    readonly s3Target: string,
    readonly fsTarget: string,
  ) {}

  static async create(config: Config, deps: Dependencies, name: string): Promise<RcloneRemotes> {
    const primary = config.locations.find((l) => l.kind === 's3');
    const secondary = config.locations.find((l) => l.kind === 'filesystem');
    if (primary?.kind !== 's3' || secondary?.kind !== 'filesystem') throw new BenchSetupError('the comparison needs an s3 and a filesystem location (the local stack has both)');
    const dir = await mkdtemp(join(tmpdir(), 'vaultpam-rclone-'));
    await chmod(dir, 0o700);
    const obscure = (secret: string) => {
      const out = spawnSync('rclone', ['obscure', '-'], { input: secret, encoding: 'utf8' });
      if (out.status !== 0) throw new Error(`rclone obscure failed (exit ${out.status})`);
      return out.stdout.trim();
    };
    const s3Target = `${primary.bucket}/${name}`;
    const fsTarget = join(secondary.path, name);
    const text = [
      '[src]',
      'type = s3',
      'provider = Other',
      `endpoint = http://127.0.0.1:${localStackPorts().s3}`,
      `access_key_id = ${primary.accessKey}`,
      `secret_access_key = ${deps.secret(primary.secretKey)}`,
      'region = us-east-1',
      'force_path_style = true',
      '',
      '[s3crypt]',
      'type = crypt',
      `remote = src:${s3Target}`,
      `password = ${obscure(randomBytes(24).toString('hex'))}`,
      `password2 = ${obscure(randomBytes(24).toString('hex'))}`,
      '',
      '[fscrypt]',
      'type = crypt',
      `remote = ${fsTarget}`,
      `password = ${obscure(randomBytes(24).toString('hex'))}`,
      `password2 = ${obscure(randomBytes(24).toString('hex'))}`,
      '',
    ].join('\n');
    const configFile = join(dir, 'rclone.conf');
    await writeFile(configFile, text, { mode: 0o600 });
    return new RcloneRemotes(dir, configFile, s3Target, fsTarget);
  }

  /** `rclone copy` with the comparison's flags; the time is the process's wall time. */
  async copy(from: string, to: string): Promise<number> {
    return (await runOrFail(`rclone copy ${from} ${to}`, 'rclone', ['--config', this.configFile, 'copy', from, to, '--transfers', String(TRANSFERS), '--stats', '0'], RcloneRemotes.env)).ms;
  }

  /** Bytes stored under a remote path (the ciphertext, when given the crypt remote's underlying path). */
  async storedBytes(path: string): Promise<{ bytes: number; count: number }> {
    const out = await runOrFail(`rclone size ${path}`, 'rclone', ['--config', this.configFile, 'size', '--json', path], RcloneRemotes.env);
    const parsed = JSON.parse(out.output.trim().split('\n').find((l) => l.startsWith('{')) ?? '{}') as { bytes?: number; count?: number };
    return { bytes: parsed.bytes ?? 0, count: parsed.count ?? 0 };
  }

  async purge(): Promise<void> {
    await run('rclone', ['--config', this.configFile, 'purge', `src:${this.s3Target}`], RcloneRemotes.env);
    await rm(this.fsTarget, { recursive: true, force: true });
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------- workers

/** A worker process of its own, its RSS sampled from /proc every 100 ms and attributed to the phase running. */
/** Where each worker writes its CPU profile (`--profile-workers`), or none. */
let workerProfileDir: string | undefined;

class WorkerProcess {
  /** Peak VmRSS per phase label, bytes. */
  readonly peaks = new Map<string, number>();
  phase = 'idle';
  private timer: NodeJS.Timeout | undefined;
  private exited: Promise<number | null>;

  private constructor(
    readonly label: string,
    private readonly child: ReturnType<typeof spawn>,
  ) {
    this.exited = new Promise((resolve) => child.once('close', resolve));
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
  }

  /** `root`: the checkout whose compiled worker runs (another one, built with scripts/build.mjs, for before/after figures). */
  static async start(configFile: string, label: string, root = repoRoot): Promise<WorkerProcess> {
    // The compiled worker as an operator runs it (dist/, with the workflow bundle made at build time); the task queue is
    // the configuration file's own.
    const profile = workerProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${workerProfileDir}`, `--cpu-prof-name=${label}.cpuprofile`] : [];
    const child = spawn(process.execPath, [...profile, join(root, 'dist', 'cli.js'), '--config', configFile, 'worker'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
    child.stdout!.resume();
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', () => {
        if (output.includes('worker polling')) resolve();
      });
      child.once('error', reject);
      child.once('close', (code) => reject(new Error(`worker ${label} exited (${code}) before it was ready:\n${output.trim()}`)));
    });
    const worker = new WorkerProcess(label, child);
    worker.readyRss = await vmField(child.pid!, 'VmRSS');
    return worker;
  }

  /** The worker's identity in workflow histories: the SDK's default, process id at host name. */
  get identity(): string {
    return `${this.child.pid}@${hostname()}`;
  }

  /** RSS once connected, before any task: the runtime's own share (V8, Temporal's core, the workflow bundle). */
  readyRss: number | undefined;

  private async sample(): Promise<void> {
    const rss = await vmField(this.child.pid!, 'VmRSS');
    if (rss !== undefined) this.peaks.set(this.phase, Math.max(this.peaks.get(this.phase) ?? 0, rss));
  }

  /** Peak RSS since the process started (its start-up included). */
  highWaterMark(): Promise<number | undefined> {
    return vmField(this.child.pid!, 'VmHWM');
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

async function vmField(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * KIB : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------- histories

type Timestamp = { seconds?: unknown; nanos?: number | null } | null | undefined;
const timestampMs = (ts: Timestamp) => Number(ts?.seconds ?? 0) * 1000 + Math.floor((ts?.nanos ?? 0) / 1e6);

interface ActivityRun {
  type: string;
  identity: string;
  startedAt: number;
  completedAt: number;
}

/** Every completed activity of a workflow, ActivityTaskStarted → ActivityTaskCompleted, with the worker that ran it. */
async function activityRuns(handle: WorkflowHandle): Promise<ActivityRun[]> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  const started = new Map<string, { at: number; identity: string }>();
  const runs: ActivityRun[] = [];
  for (const event of history.events ?? []) {
    const at = timestampMs(event.eventTime);
    if (event.activityTaskScheduledEventAttributes) scheduled.set(String(event.eventId), event.activityTaskScheduledEventAttributes.activityType?.name ?? 'unknown');
    const start = event.activityTaskStartedEventAttributes;
    if (start) started.set(String(start.scheduledEventId), { at, identity: start.identity ?? 'unknown' });
    const done = event.activityTaskCompletedEventAttributes;
    if (done) {
      const from = started.get(String(done.scheduledEventId));
      const type = scheduled.get(String(done.scheduledEventId));
      if (from && type) runs.push({ type, identity: from.identity, startedAt: from.at, completedAt: at });
    }
  }
  return runs;
}

/** Per activity type: first start to last completion (shards and replicas run side by side), longest first. */
function phaseSpans(runs: ActivityRun[]): [string, number][] {
  const spans = new Map<string, { from: number; to: number }>();
  for (const r of runs) {
    const s = spans.get(r.type);
    spans.set(r.type, { from: Math.min(s?.from ?? r.startedAt, r.startedAt), to: Math.max(s?.to ?? r.completedAt, r.completedAt) });
  }
  return [...spans].map(([type, s]): [string, number] => [type, s.to - s.from]).sort((a, b) => b[1] - a[1]);
}

const topPhases = (runs: ActivityRun[], n = 3) =>
  phaseSpans(runs)
    .slice(0, n)
    .map(([type, ms]) => `${type} ${seconds(ms)}`)
    .join(', ');

// ---------------------------------------------------------------------------------------------- the product

interface Harness {
  instance: SandboxInstance;
  config: Config;
  configInput: ConfigInput;
  deps: Dependencies;
  client: Client;
  taskQueue: string;
  configFile: string;
  workers: WorkerProcess[];
  started: WorkflowHandle[];
}

function benchConfigInput(instance: SandboxInstance, prefix: string): ConfigInput {
  const base = localStackConfig();
  return {
    ...base,
    deployment: { ...instance.deployment },
    staging: undefined,
    locations: base.locations.map((location) => ({ ...location, prefix })),
    // The benchmark times the restore itself: its pre-confirmed restores need a target without approvals.
    restore: { ...base.restore, approvals: { production: 0, staging: 0 } },
  };
}

function setPhase(h: Harness, phase: string): void {
  for (const w of h.workers) w.phase = phase;
}

interface TimedBackup {
  result: BackupResult;
  ms: number;
  runs: ActivityRun[];
}

async function timedBackup(h: Harness, label: string): Promise<TimedBackup> {
  progress(`product: backup (${label})`);
  setPhase(h, label);
  const started = performance.now();
  const handle = await startBackup(h.client, h.config, { taskQueue: h.taskQueue, reason: `benchmark: ${label}`, requestedBy: 'bench' });
  h.started.push(handle);
  const result = await backupResult(handle);
  const ms = performance.now() - started;
  setPhase(h, 'idle');
  return { result, ms, runs: await activityRuns(handle) };
}

/** A pre-confirmed full restore without the safety snapshot (the workflow's own input, as the restore command builds it). */
async function timedRestore(h: Harness, backupId: string, label: string): Promise<{ report: RestoreReport; ms: number; runs: ActivityRun[] }> {
  progress(`product: full restore of ${backupId}`);
  const deployment = h.config.deployment.name;
  const input: RestoreInput = {
    deployment,
    target: 'production',
    targetDeployment: deployment,
    backupId,
    scope: { kind: 'full' },
    reason: 'benchmark',
    requestedBy: 'bench',
    confirmed: true,
    safetySnapshot: false,
  };
  setPhase(h, label);
  const started = performance.now();
  const handle = await h.client.workflow.start('restoreWorkflow', {
    taskQueue: h.taskQueue,
    workflowId: restoreWorkflowId(deployment),
    args: [input],
    typedSearchAttributes: [
      { key: DEPLOYMENT, value: deployment },
      { key: OPERATION, value: 'restore' },
    ],
    staticSummary: `Benchmark restore of ${deployment} from ${backupId}`,
  });
  h.started.push(handle);
  const report = (await handle.result()) as RestoreReport;
  const ms = performance.now() - started;
  setPhase(h, 'idle');
  if (report.status !== 'completed') throw new Error(`the restore ended ${report.status}: ${report.error ?? ''}`);
  return { report, ms, runs: await activityRuns(handle) };
}

/** `verify --deep` of a backup, with the configuration's own timeouts; fails the run unless every location verified. */
async function timedDeepVerify(h: Harness, backupId: string): Promise<{ ms: number; runs: ActivityRun[] }> {
  progress(`product: verify --deep of ${backupId}`);
  setPhase(h, 'deep verify');
  const started = performance.now();
  const verified = await runVerify(h.client, h.config, backupId, true, h.taskQueue);
  const ms = performance.now() - started;
  setPhase(h, 'idle');
  if (!verified.ok) throw new Error(`verify --deep of ${backupId} failed: ${verified.locations.filter((l) => !l.ok).map((l) => `${l.name}: ${l.problem ?? 'not verified'}`).join('; ')}`);
  return { ms, runs: await activityRuns(h.client.workflow.getHandle(verified.workflowId, verified.runId)) };
}

/** `pg_dump -Fc` at the product's compression level, to a file: the baseline of the dump step. */
async function baselineDump(h: Harness, file: string): Promise<{ ms: number; bytes: number }> {
  const pg = h.config.deployment.postgres;
  const password = h.deps.postgresPassword('production');
  const args = ['-Fc', `--compress=${DUMP_COMPRESS_LEVEL}`, '--no-password', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', pg.database, '-f', file];
  const env = { ...process.env, ...(password === undefined ? {} : { PGPASSWORD: password }) };
  progress(`baseline: pg_dump -Fc --compress=${DUMP_COMPRESS_LEVEL}`);
  const done = await runOrFail('pg_dump', findPgTool('pg_dump', pg), args, env);
  return { ms: done.ms, bytes: (await stat(file)).size };
}

/** The product's own dump artifact of a backup, decrypted to a file (untimed: the baseline restores from plaintext). */
async function decryptDump(h: Harness, backupId: string, file: string): Promise<void> {
  const location = h.deps.locations()[0]!;
  const manifest = await readManifest(location, h.config.deployment.name, backupId, { keyRing: h.deps.keyRing() });
  if (!manifest) throw new Error(`backup ${backupId} has no manifest at ${location.name}`);
  if (databaseParts(manifest.artifacts).length) throw new Error(`backup ${backupId} has its dump in table parts: restore pg_dump's own file for the baseline instead`);
  const dataKey = unwrapKey(manifest.encryption.dataKey, h.deps.keyRing());
  await pipeline(await openArtifact(location, manifest.artifacts.db, dataKey), createWriteStream(file));
}

/** `pg_restore -j 2` (the product's flags: no owner, no privileges, exit on error) into a fresh database. */
async function baselineRestore(h: Harness, file: string): Promise<number> {
  const pg = h.config.deployment.postgres;
  const password = h.deps.postgresPassword('production');
  const fresh = `${pg.database}_baseline`;
  progress(`baseline: pg_restore -j ${PG_RESTORE_JOBS} into ${fresh}`);
  await dropDatabase(pg, password, fresh, { ifExists: true, force: true });
  const started = performance.now();
  await createDatabase(pg, password, fresh);
  await restoreDump({ config: pg, password, database: fresh, file, jobs: PG_RESTORE_JOBS });
  const ms = performance.now() - started;
  await dropDatabase(pg, password, fresh, { ifExists: true, force: true });
  return ms;
}

/** Bytes stored in each product location (everything under this run's prefix). */
async function productStored(h: Harness): Promise<Map<string, { bytes: number; count: number }>> {
  const out = new Map<string, { bytes: number; count: number }>();
  for (const location of h.deps.locations()) {
    let bytes = 0;
    let count = 0;
    for await (const object of location.list('')) {
      bytes += object.size;
      count += 1;
    }
    out.set(location.name, { bytes, count });
  }
  return out;
}

async function bucketBytes(h: Harness): Promise<{ bytes: number; count: number }> {
  let bytes = 0;
  let count = 0;
  for await (const item of h.deps.recordingsClient('production').listObjectsV2(h.config.deployment.recordings.bucket, '', true)) {
    bytes += (item as { size?: number }).size ?? 0;
    count += 1;
  }
  return { bytes, count };
}

// ---------------------------------------------------------------------------------------------- set-up and tear-down

/** Creates an instance, its configuration file for the workers and the workers themselves; `work` runs with them. */
async function withHarness<T>(
  name: string,
  workerCount: number,
  keep: boolean,
  workDir: string,
  work: (h: Harness) => Promise<T>,
  configure: (input: ConfigInput) => ConfigInput = (input) => input,
): Promise<T> {
  progress(`creating sandbox instance ${name}`);
  const instance = await createSandboxInstance({ name });
  const configInput = configure(benchConfigInput(instance, name));
  const config = parseConfig(configInput);
  const deps = createDependencies(config);
  const configFile = join(workDir, `${name}.config.json`);
  const taskQueue = `bench-${randomUUID()}`;
  // File references only: the workers resolve the secrets themselves. The task queue is this run's own.
  await writeFile(configFile, JSON.stringify({ ...configInput, temporal: { ...configInput.temporal, taskQueue } }), { mode: 0o600 });
  const h: Harness = { instance, config, configInput, deps, client: undefined as unknown as Client, taskQueue, configFile, workers: [], started: [] };
  const interrupt = () => {
    progress('interrupted; terminating this run\'s workflows, then cleaning up');
    for (const handle of h.started) handle.terminate('benchmark interrupted').catch(() => undefined);
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    h.client = await connectClient(config);
    for (let i = 1; i <= workerCount; i++) h.workers.push(await WorkerProcess.start(configFile, `bench-worker-${i}`));
    return await work(h);
  } finally {
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
    for (const w of h.workers) await w.stop().catch(() => undefined);
    await h.client?.connection.close().catch(() => undefined);
    if (keep) {
      progress(`kept sandbox instance ${instance.configPath} and backups under prefix "${name}"; remove the instance with: node --import tsx sandbox/instance.ts destroy ${instance.configPath}`);
    } else {
      const deleted = await deletePrefix(h).catch(() => 0);
      await dropSetAside(h).catch(() => undefined);
      await instance.destroy().catch((error: unknown) => progress(`could not remove instance ${name}: ${(error as Error).message}`));
      progress(`removed sandbox instance ${name} and ${deleted} backup objects under prefix "${name}"`);
    }
  }
}

/** Deletes every key this run wrote in each location (the whole prefix is this run's), then the empty directory. */
async function deletePrefix(h: Harness): Promise<number> {
  let deleted = 0;
  for (const location of h.deps.locations()) {
    let keys: string[] = [];
    for await (const object of location.list('')) {
      keys.push(object.key);
      if (keys.length === 1000) {
        await location.delete(keys);
        deleted += keys.length;
        keys = [];
      }
    }
    await location.delete(keys);
    deleted += keys.length;
    const settings = h.config.locations.find((l) => l.name === location.name);
    if (settings?.kind === 'filesystem' && settings.prefix) {
      const root = join(settings.path, settings.prefix);
      // The driver prunes emptied directories up to its root, which is this run's prefix: only that one is left.
      if ((await readdir(root).catch(() => ['?'])).length === 0) await rmdir(root);
    }
  }
  return deleted;
}

/** The databases a full restore sets aside beside the live one (named after it; the live name is this run's alone). */
async function dropSetAside(h: Harness): Promise<void> {
  const pg = h.config.deployment.postgres;
  const password = h.deps.postgresPassword('production');
  const names = await withClient(pg, password, async (client) =>
    (await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [`${pg.database}_`])).rows.map((r) => r.datname),
  );
  for (const name of names) await dropDatabase(pg, password, name, { ifExists: true, force: true });
}

// ---------------------------------------------------------------------------------------------- --compare

interface Target {
  name: string;
  value: number;
  limit: number;
  unit: 'ratio' | 'MB';
  /** Where the product's time (or memory) went: named when the target is missed. */
  where: string;
}

async function compare(o: CompareOptions, keep: boolean, workDir: string, out: string[]): Promise<void> {
  const name = `cmp-${randomBytes(4).toString('hex')}`;
  await withHarness(name, 1, keep, workDir, async (h) => {
    const rclone = await RcloneRemotes.create(h.config, h.deps, `${name}-rclone`);
    const bucket = `src:${h.config.deployment.recordings.bucket}`;
    const backBucket = `${h.config.deployment.recordings.bucket}-back`;
    const worker = h.workers[0]!;
    try {
      progress(`seeding ${o.audit} audit rows and ${o.baseRecordings} recordings of ${size(o.smallBytes)}`);
      await seedInstance(h.instance, { resources: 100, connectors: 20, audit: o.audit, recordings: o.baseRecordings, 'recording-bytes': o.smallBytes });
      // The first copies make "new since the last backup" mean the same for both.
      await timedBackup(h, 'first backup (untimed)');
      progress('baseline: first rclone copies (untimed)');
      await rclone.copy(bucket, 's3crypt:');
      await rclone.copy(bucket, 'fscrypt:');

      progress(`seeding ${o.smallCount} new recordings of ${size(o.smallBytes)}`);
      await seedInstance(h.instance, onlyRecordings(o.smallCount, o.smallBytes, 16));
      const small = await timedBackup(h, 'incremental, small');
      if (small.result.recordings.copiedObjects !== o.smallCount) throw new Error(`the incremental backup copied ${small.result.recordings.copiedObjects} recordings, ${o.smallCount} were new`);
      progress('baseline: rclone copy, small (S3 crypt, then filesystem crypt)');
      const smallS3 = await rclone.copy(bucket, 's3crypt:');
      const smallFs = await rclone.copy(bucket, 'fscrypt:');

      progress(`seeding ${o.largeCount} new recordings of ${size(o.largeBytes)}`);
      // Two uploads at a time: the seeding process holds each recording whole in memory.
      await seedInstance(h.instance, onlyRecordings(o.largeCount, o.largeBytes, 2));
      // rclone first this time, so neither side always runs on a machine the other just warmed.
      progress('baseline: rclone copy, large (S3 crypt, then filesystem crypt)');
      const largeS3 = await rclone.copy(bucket, 's3crypt:');
      const largeFs = await rclone.copy(bucket, 'fscrypt:');
      const large = await timedBackup(h, 'incremental, large');
      if (large.result.recordings.copiedObjects !== o.largeCount) throw new Error(`the incremental backup copied ${large.result.recordings.copiedObjects} recordings, ${o.largeCount} were new`);

      // The database: the dump step of the small incremental (the same database) against pg_dump at the same level.
      const dumpFile = join(rclone.dir, 'baseline.dump');
      const baseDump = await baselineDump(h, dumpFile);
      await rm(dumpFile, { force: true });
      const dumpRun = small.runs.find((r) => r.type === 'dump');
      const productDumpMs = dumpRun ? dumpRun.completedAt - dumpRun.startedAt : small.ms;

      const source = await bucketBytes(h);
      const stored = await productStored(h);
      const rcloneS3 = await rclone.storedBytes(`src:${rclone.s3Target}`);
      const rcloneFs = await rclone.storedBytes(rclone.fsTarget);

      // RTO: the recordings bucket lost, then the product's full restore, then the baseline's.
      const restoredDump = join(rclone.dir, 'restore.dump');
      await decryptDump(h, large.result.backupId, restoredDump);
      const lost = await emptyBucket(h.deps.recordingsClient('production'), h.config.deployment.recordings.bucket);
      progress(`recordings bucket emptied (${lost} objects)`);
      const restore = await timedRestore(h, large.result.backupId, 'full restore');
      const pgRestoreMs = await baselineRestore(h, restoredDump);
      await rm(restoredDump, { force: true });
      const s3 = h.deps.recordingsClient('production');
      if (!(await s3.bucketExists(backBucket))) await s3.makeBucket(backBucket);
      progress(`baseline: rclone copy s3crypt: → empty bucket ${backBucket}`);
      const backMs = await rclone.copy('s3crypt:', `src:${backBucket}`);
      const back = await rclone.storedBytes(`src:${backBucket}`);
      await emptyBucket(s3, backBucket);
      await s3.removeBucket(backBucket);
      if (back.count !== restore.report.recordings!.restored) progress(`note: rclone brought back ${back.count} objects, the product restored ${restore.report.recordings!.restored}`);

      const hwm = await worker.highWaterMark();
      const peak = Math.max(...[...worker.peaks].filter(([phase]) => phase !== 'idle' && !phase.includes('untimed')).map(([, v]) => v));
      const peakPhase = [...worker.peaks].find(([, v]) => v === peak)?.[0] ?? '?';

      // ---- report
      const rtoMs = restore.report.rtoMs ?? restore.ms;
      const recordingSteps = (runs: ActivityRun[]) => phaseSpans(runs.filter((r) => ['syncRecordings', 'assembleIndex', 'replicate', 'snapshotRecordings'].includes(r.type))).reduce((a, [, ms]) => a + ms, 0);
      const rows: string[][] = [];
      const line = (job: string, product: number, baseline: number, baselineWhat: string, target: string) =>
        rows.push([job, seconds(product), `${seconds(baseline)} (${baselineWhat})`, `${ratio(product, baseline).toFixed(2)}×`, target]);
      line(`recordings, ${o.smallCount} × ${size(o.smallBytes)} new: whole backup`, small.ms, smallS3 + smallFs, `rclone S3 ${seconds(smallS3)} + fs ${seconds(smallFs)}`, '≤ 0.80×');
      line(`  of which the recordings steps`, recordingSteps(small.runs), smallS3 + smallFs, 'same', '-');
      line(`recordings, ${o.largeCount} × ${size(o.largeBytes)} new: whole backup`, large.ms, largeS3 + largeFs, `rclone S3 ${seconds(largeS3)} + fs ${seconds(largeFs)}`, '≤ 0.80×');
      line(`  of which the recordings steps`, recordingSteps(large.runs), largeS3 + largeFs, 'same', '-');
      line(`database dump (${o.audit} audit rows)`, productDumpMs, baseDump.ms, `pg_dump -Fc --compress=${DUMP_COMPRESS_LEVEL}`, '≤ 1.00×');
      line('RTO, full restore', rtoMs, pgRestoreMs + backMs, `pg_restore -j ${PG_RESTORE_JOBS} ${seconds(pgRestoreMs)} + rclone back ${seconds(backMs)}`, '≤ 1.20×');
      const recordingsCompleteMs = restore.report.recordingsCompleteMs;
      if (recordingsCompleteMs !== undefined) line('  recordings complete (stop → every recording back)', recordingsCompleteMs, pgRestoreMs + backMs, 'same', '-');

      const targets: Target[] = [
        { name: `recordings, small (${o.smallCount} × ${size(o.smallBytes)})`, value: ratio(small.ms, smallS3 + smallFs), limit: 0.8, unit: 'ratio', where: topPhases(small.runs) },
        { name: `recordings, large (${o.largeCount} × ${size(o.largeBytes)})`, value: ratio(large.ms, largeS3 + largeFs), limit: 0.8, unit: 'ratio', where: topPhases(large.runs) },
        { name: 'database dump', value: ratio(productDumpMs, baseDump.ms), limit: 1.0, unit: 'ratio', where: 'the dump activity (snapshot, connector export, bucket clock, row counts, then pg_dump through encryption into the primary)' },
        { name: 'RTO', value: ratio(rtoMs, pgRestoreMs + backMs), limit: 1.2, unit: 'ratio', where: topPhases(restore.runs) },
        { name: 'worker RSS', value: peak / 1e6, limit: 300, unit: 'MB', where: `peak during "${peakPhase}"` },
      ];

      const cpu = cpus();
      out.push('\n## Comparison with rclone and pg_dump/pg_restore\n');
      out.push(`${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, ${osType()} ${release()}, Node ${process.version}, ${rcloneVersion}`);
      out.push(
        `Data: ${o.audit} audit rows, 100 resources; ${o.baseRecordings} recordings before the first backup, then ${o.smallCount} × ${size(o.smallBytes)}, then ${o.largeCount} × ${size(o.largeBytes)} new. ` +
          `Product: incremental backup through src/operations/backup.ts, one worker in a process of its own, backup.concurrency ${h.config.backup.concurrency}, both locations (primary S3, secondary filesystem). ` +
          `Baseline: rclone copy --transfers ${TRANSFERS} into a crypt remote over S3, then into one over a directory, one after the other; each side's first copy made before the new data and not timed.\n`,
      );
      out.push(markdownTable(['job', 'product', 'baseline', 'ratio', 'target'], rows, ['l', 'r', 'r', 'r', 'l']));
      out.push('');
      out.push(
        markdownTable(
          ['stored', 'objects', 'bytes'],
          [
            ['recordings bucket (source)', String(source.count), mib(source.bytes)],
            ...[...stored].map(([loc, s]) => [`product, ${loc} (all backups)`, String(s.count), mib(s.bytes)]),
            ['rclone, S3 crypt', String(rcloneS3.count), mib(rcloneS3.bytes)],
            ['rclone, filesystem crypt', String(rcloneFs.count), mib(rcloneFs.bytes)],
            [`dump: product (pg_dump -Fc --compress=${DUMP_COMPRESS_LEVEL} output, before encryption)`, '1', mib(small.result.dumpBytes)],
            [`dump: pg_dump -Fc --compress=${DUMP_COMPRESS_LEVEL} file`, '1', mib(baseDump.bytes)],
          ],
          ['l', 'r', 'r'],
        ),
      );
      out.push('');
      out.push(
        `Worker RSS (VmRSS of the worker process, sampled every ${SAMPLE_MS} ms): ` +
          [...worker.peaks].filter(([phase]) => phase !== 'idle').map(([phase, v]) => `${phase} ${mib(v)}`).join(', ') +
          `; VmHWM since start ${hwm === undefined ? '?' : mib(hwm)}; ${worker.readyRss === undefined ? '?' : mib(worker.readyRss)} once ready, before any task.`,
      );
      out.push(`Restore: RTO ${seconds(rtoMs)} (stop → control plane serving and smoke-tested)${restore.report.recordingsCompleteMs !== undefined ? `, recordings complete ${seconds(restore.report.recordingsCompleteMs)} after the stop` : ''}, workflow ${seconds(restore.ms)}; ${restore.report.recordings?.restored ?? 0} recordings restored; steps: ${topPhases(restore.runs, 5)}.`);
      out.push(`Backup steps (started → completed), small: ${topPhases(small.runs, 6)}; large: ${topPhases(large.runs, 6)}.\n`);
      out.push(formatTargets(targets));
    } finally {
      if (!keep) await rclone.purge().catch(() => undefined);
      await rclone.dispose();
    }
  });
}

let rcloneVersion = 'rclone';

function formatTargets(targets: Target[]): string {
  const shown = (t: Target, v: number) => (t.unit === 'MB' ? `${v.toFixed(0)} MB` : `${v.toFixed(2)}×`);
  const rows = targets.map((t) => [t.name, shown(t, t.value), `≤ ${shown(t, t.limit)}`, t.value <= t.limit ? 'met' : 'MISSED']);
  const missed = targets.filter((t) => t.value > t.limit);
  const lines = [markdownTable(['target', 'measured', 'target', ''], rows, ['l', 'r', 'r', 'l'])];
  lines.push('');
  if (missed.length === 0) lines.push('Every target met.');
  for (const t of missed) lines.push(`- MISSED ${t.name}: ${shown(t, t.value)} against ${shown(t, t.limit)}; ${t.unit === 'MB' ? '' : 'the time went to: '}${t.where}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------- --scale

async function scaleRecordings(count: number, keep: boolean, workDir: string, out: string[]): Promise<void> {
  const name = `scr-${randomBytes(4).toString('hex')}`;
  await withHarness(name, 2, keep, workDir, async (h) => {
    const rclone = await RcloneRemotes.create(h.config, h.deps, `${name}-rclone`);
    try {
      progress(`seeding ${count} recordings of 1 KiB straight into the bucket (64 at a time)`);
      const seedMs = await seedInstance(h.instance, { resources: 10, connectors: 5, audit: 0, recordings: count, 'recording-bytes': KIB, concurrency: 64, 'backdate-days': SCALE_BACKDATE_DAYS });
      const [first, second] = h.workers;
      // One worker: the other is stopped, so every shard is the first's.
      await second!.stop();
      h.workers = [first!];
      const one = await timedBackup(h, `full, 1 worker`);
      progress('baseline: rclone copy, S3 crypt then filesystem crypt');
      const bucket = `src:${h.config.deployment.recordings.bucket}`;
      const s3Ms = await rclone.copy(bucket, 's3crypt:');
      const fsMs = await rclone.copy(bucket, 'fscrypt:');
      await rclone.purge();
      // The disk holds one copy at a time: the first backup goes before the second is made (which is then full too).
      await deletePrefix(h);
      h.workers.push(await WorkerProcess.start(h.configFile, 'bench-worker-2'));
      const two = await timedBackup(h, `full, 2 workers`);
      const shardsBy = (runs: ActivityRun[]) => {
        const by = new Map<string, number>();
        for (const r of runs.filter((x) => x.type === 'syncRecordings')) by.set(r.identity, (by.get(r.identity) ?? 0) + 1);
        return [...by].map(([id, n]) => `${h.workers.find((w) => w.identity === id)?.label ?? id.replace(/@.*/, '')}: ${n}`).join(', ');
      };
      const rows = [
        ['product, full backup, 1 worker', seconds(one.ms), shardsBy(one.runs), topPhases(one.runs)],
        ['product, full backup, 2 workers', seconds(two.ms), shardsBy(two.runs), topPhases(two.runs)],
        [`rclone S3 crypt + filesystem crypt (--transfers ${TRANSFERS})`, seconds(s3Ms + fsMs), '-', `S3 ${seconds(s3Ms)}, fs ${seconds(fsMs)}`],
      ];
      out.push(`\n## Scale: ${count} recordings × 1 KiB\n`);
      out.push(`Seeded in ${seconds(seedMs)} (objects straight into the bucket, 64 at a time). backup.objectsPerShard ${h.config.backup.objectsPerShard}, maxShards ${h.config.backup.maxShards}: ${one.result.recordings.objects} recordings.\n`);
      out.push(markdownTable(['run', 'wall time', 'shards by worker', 'longest steps'], rows, ['l', 'r', 'l', 'l']));
      out.push(`\nratio 1 worker / rclone ${ratio(one.ms, s3Ms + fsMs).toFixed(2)}×, 2 workers / rclone ${ratio(two.ms, s3Ms + fsMs).toFixed(2)}×, 2 workers / 1 worker ${ratio(two.ms, one.ms).toFixed(2)}×.`);
      const ready = (w: WorkerProcess) => (w.readyRss === undefined ? '?' : mib(w.readyRss));
      out.push(`Worker RSS peaks: ${h.workers.map((w) => `${w.label} (${ready(w)} once ready) ${[...w.peaks].filter(([p]) => p !== 'idle').map(([p, v]) => `${p} ${mib(v)}`).join(', ')}`).join('; ')}.`);
    } finally {
      if (!keep) await rclone.purge().catch(() => undefined);
      await rclone.dispose();
    }
  });
}

/** The recordings bucket listed alone, as the snapshot step lists it: its time and the pages it took (1000 keys each). */
async function timedListing(h: Harness): Promise<{ ms: number; objects: number }> {
  const started = performance.now();
  let objects = 0;
  for await (const _ of h.deps.recordingsClient('production').listObjectsV2(h.config.deployment.recordings.bucket, '', true)) objects += 1;
  return { ms: performance.now() - started, objects };
}

/**
 * An incremental backup with nothing new after a full one, at `count` recordings of 1 KiB: what each step costs per
 * recording held. With `beforeRoot`, that checkout's worker runs the same incremental first, on the same data.
 */
async function scaleNothingNew(scale: ScaleOptions, keep: boolean, workDir: string, out: string[]): Promise<void> {
  const count = scale.recordings;
  const name = `snn-${randomBytes(4).toString('hex')}`;
  await withHarness(name, 1, keep, workDir, async (h) => {
    progress(`seeding ${count} recordings of 1 KiB straight into the bucket (64 at a time)`);
    const seedMs = await seedInstance(h.instance, { resources: 10, connectors: 5, audit: 0, recordings: count, 'recording-bytes': KIB, concurrency: 64, 'backdate-days': SCALE_BACKDATE_DAYS });
    const full = await timedBackup(h, 'full');
    const fullPeak = h.workers[0]!.peaks.get('full');
    const listing = await timedListing(h);
    const runs: { label: string; backup: TimedBackup; peak?: number }[] = [];
    const rerun = async (label: string, root: string) => {
      for (const w of h.workers) await w.stop();
      h.workers = [await WorkerProcess.start(h.configFile, `bench-worker-${label}`, root)];
      const backup = await timedBackup(h, `nothing new, ${label}`);
      if (backup.result.recordings.copiedObjects !== 0) throw new Error(`the incremental backup with nothing new copied ${backup.result.recordings.copiedObjects} recordings`);
      runs.push({ label, backup, peak: h.workers[0]!.peaks.get(`nothing new, ${label}`) });
    };
    // The other checkout's compiled worker (build it there first: node scripts/build.mjs).
    if (scale.beforeRoot) await rerun('before', scale.beforeRoot);
    await rerun('this code', repoRoot);

    const span = (b: TimedBackup, type: string) => phaseSpans(b.runs).find(([t]) => t === type)?.[1];
    const cell = (ms: number | undefined) => (ms === undefined ? '-' : seconds(ms));
    const outsideDump = (b: TimedBackup) => b.ms - (span(b, 'dump') ?? 0);
    const steps: [string, string][] = [
      ['listing (snapshotRecordings)', 'snapshotRecordings'],
      ['syncRecordings', 'syncRecordings'],
      ['verifyBackup', 'verifyBackup'],
      ['replicate', 'replicate'],
      ['commitBackup', 'commitBackup'],
      ['prune', 'prune'],
      ['dump', 'dump'],
    ];
    const rows = [
      ...steps.map(([label, type]) => [label, ...runs.map((r) => cell(span(r.backup, type)))]),
      ['whole backup', ...runs.map((r) => seconds(r.backup.ms))],
      ['whole backup minus the dump', ...runs.map((r) => seconds(outsideDump(r.backup)))],
      ['  per recording held', ...runs.map((r) => `${(outsideDump(r.backup) / count).toFixed(3)} ms`)],
      ['  at 1 M recordings (linear)', ...runs.map((r) => seconds((outsideDump(r.backup) / count) * 1_000_000))],
      ['worker peak RSS', ...runs.map((r) => (r.peak === undefined ? '-' : mib(r.peak)))],
    ];
    out.push(`\n## Scale: an incremental backup with nothing new, ${count} recordings × 1 KiB\n`);
    out.push(`Seeded in ${seconds(seedMs)} (dated over ${SCALE_BACKDATE_DAYS} days); full backup ${seconds(full.ms)} (${topPhases(full.runs)}; worker peak RSS ${mib(fullPeak ?? 0)}). The bucket listed alone: ${seconds(listing.ms)} for ${listing.objects} keys in ${Math.ceil(listing.objects / 1000)} pages of 1000 (${(listing.ms / Math.max(1, Math.ceil(listing.objects / 1000))).toFixed(1)} ms a page).\n`);
    out.push(markdownTable(['step (started → completed)', ...runs.map((r) => r.label)], rows, ['l', ...runs.map(() => 'r' as const)]));
  });
}

async function scaleAudit(scale: ScaleOptions, keep: boolean, workDir: string, out: string[]): Promise<void> {
  const rows = scale.audit;
  const name = `sca-${randomBytes(4).toString('hex')}`;
  // --single-dump: no table is large enough for a part of its own.
  const configure = (input: ConfigInput): ConfigInput =>
    scale.singleDump ? { ...input, backup: { ...input.backup, parallelDump: { jobs: 2, minTableBytes: Number.MAX_SAFE_INTEGER } } } : input;
  await withHarness(name, 1, keep, workDir, async (h) => {
    // Five million rows per statement: one huge INSERT would hold its whole transaction's WAL at once.
    const chunk = 5_000_000;
    const seedStarted = performance.now();
    for (let done = 0; done < rows; done += chunk) {
      const n = Math.min(chunk, rows - done);
      progress(`seeding audit rows ${done + 1}-${done + n} of ${rows}`);
      const first = done === 0;
      await seedInstance(h.instance, { organisations: first ? 2 : 0, resources: first ? 100 : 0, connectors: first ? 20 : 0, audit: n, recordings: first ? 100 : 0, 'recording-bytes': 16 * KIB });
    }
    // Several large tables: copies of the audit log, each a table of its own with its own primary key.
    await withClient(h.config.deployment.postgres, h.deps.postgresPassword('production'), async (c) => {
      for (let i = 2; i <= scale.tables; i++) {
        progress(`copying the audit log into audit_log_copy_${i}`);
        await c.query(`CREATE TABLE audit_log_copy_${i} (LIKE audit_log INCLUDING ALL)`);
        await c.query(`INSERT INTO audit_log_copy_${i} SELECT * FROM audit_log`);
      }
      await c.query('VACUUM ANALYZE');
    });
    const seedMs = performance.now() - seedStarted;
    const backup = await timedBackup(h, 'full backup');
    const dumpRun = backup.runs.find((r) => r.type === 'dump');
    const productDumpMs = dumpRun ? dumpRun.completedAt - dumpRun.startedAt : backup.ms;
    const file = join(workDir, `${name}.dump`);
    try {
      // pg_restore -j 2 restores pg_dump's own file: the same database, the same level; the product's dump may be in parts.
      const baseDump = await baselineDump(h, file);
      const deep = await timedDeepVerify(h, backup.result.backupId);
      const restore = await timedRestore(h, backup.result.backupId, 'full restore');
      const pgRestoreMs = await baselineRestore(h, file);
      const restoreDb = phaseSpans(restore.runs).find(([t]) => t === 'restoreDatabase')?.[1] ?? 0;
      const manifest = await readManifest(h.deps.locations()[0]!, h.config.deployment.name, backup.result.backupId, { keyRing: h.deps.keyRing() });
      const parts = manifest ? databaseParts(manifest.artifacts).length : 0;
      out.push(`\n## Scale: ${rows} audit rows${scale.tables > 1 ? ` in ${scale.tables} tables (the audit log and ${scale.tables - 1} copies)` : ''}\n`);
      out.push(`Dump: ${scale.singleDump ? 'one archive (--single-dump)' : `parallelDump jobs ${h.config.backup.parallelDump.jobs}, minTableBytes ${mib(h.config.backup.parallelDump.minTableBytes)}: ${parts} table part(s) beside the main archive`}.\n`);
      out.push(`Seeded in ${seconds(seedMs)}.\n`);
      out.push(
        markdownTable(
          ['job', 'product', 'baseline', 'ratio'],
          [
            ['dump', `${seconds(productDumpMs)} (${mib(backup.result.dumpBytes)})`, `${seconds(baseDump.ms)} (pg_dump -Fc --compress=${DUMP_COMPRESS_LEVEL}, ${mib(baseDump.bytes)})`, `${ratio(productDumpMs, baseDump.ms).toFixed(2)}×`],
            ['database restore', `${seconds(restoreDb)} (restoreDatabase step)`, `${seconds(pgRestoreMs)} (pg_restore -j ${PG_RESTORE_JOBS})`, `${ratio(restoreDb, pgRestoreMs).toFixed(2)}×`],
            ['verify --deep (every location: the dump read and restored into a scratch database)', seconds(deep.ms), '-', '-'],
            ['RTO (stop → smoke test)', seconds(restore.report.rtoMs ?? restore.ms), '-', '-'],
          ],
          ['l', 'r', 'r', 'r'],
        ),
      );
      out.push(`\nBackup steps: ${topPhases(backup.runs, 5)}. Deep verify steps: ${topPhases(deep.runs, 5)}. Restore steps: ${topPhases(restore.runs, 5)}. Worker RSS peaks: ${[...h.workers[0]!.peaks].filter(([p]) => p !== 'idle').map(([p, v]) => `${p} ${mib(v)}`).join(', ')}.`);
    } finally {
      await rm(file, { force: true });
    }
  }, configure);
}

// ---------------------------------------------------------------------------------------------- entry

/** Runs --compare and/or --scale; prints the figures on stdout, progress on stderr; never throws. */
export async function runComparison(argv: string[]): Promise<void> {
  let workDir: string | undefined;
  try {
    const options = parseComparisonOptions(argv);
    if (!options) {
      console.log(USAGE);
      return;
    }
    rcloneVersion = ensureRclone();
    const loadAtStart = load();
    const out: string[] = [];
    workDir = await mkdtemp(join(tmpdir(), 'vaultpam-bench-compare-'));
    await chmod(workDir, 0o700);
    progress(`stack at ${localStackDir()}; load average at start ${loadAtStart}`);
    if (options.compare) await compare(options.compare, options.keep, workDir, out);
    if (options.scale?.recordings && options.scale.nothingNew) await scaleNothingNew(options.scale, options.keep, workDir, out);
    else if (options.scale?.recordings) await scaleRecordings(options.scale.recordings, options.keep, workDir, out);
    if (options.scale?.audit) await scaleAudit(options.scale, options.keep, workDir, out);
    out.push(`\nCommand: npm run bench -- ${argv.join(' ')}. Load average (1, 5, 15 min) at start ${loadAtStart}, at end ${load()}.`);
    process.stdout.write(`${out.join('\n')}\n`);
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    if (!(error instanceof BenchSetupError) && error instanceof Error && error.stack) console.error(error.stack);
    process.exitCode = error instanceof BenchSetupError ? 2 : 1;
  } finally {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  }
}
