// Benchmark of backup, incremental backup, verify and restore on an isolated sandbox deployment: prints wall times, throughput, the write pause and peak RSS.
//
//   npm run bench -- [--audit N] [--recordings N] [--recording-kib N] [--resources N] [--concurrency N]
//                    [--skip-double] [--large [--large-count N] [--large-mib N]] [--keep]
//   npm run bench -- --compare | --scale [...]     (scripts/bench-compare.ts: beside rclone and pg_dump/pg_restore)
//
// Figures come from one real worker running in this process (so process RSS is the worker's memory), the real
// Temporal dev server, PostgreSQL and S3 server of scripts/stack.sh, and a sandbox instance of its own, so the
// shared sandboxes and whatever else runs on the stack are left alone. Seeding runs in a child process: its
// buffers would otherwise count as the worker's memory.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime, bundleWorkflowCode } from '@temporalio/worker';
import { parseConfig } from '../src/config/load';
import { localStackConfig, repoRoot } from '../src/config/local-stack';
import type { Config, ConfigInput } from '../src/config/schema';
import { backupResult, startBackup } from '../src/operations/backup';
import { restoreWorkflowId } from '../src/operations/restore';
import { runVerify } from '../src/operations/verify';
import { countRows, dropDatabase, withClient } from '../src/postgres';
import { createDependencies, type Dependencies } from '../src/runtime/dependencies';
import { isEntryPoint } from '../src/runtime/entry-point';
import { connectClient } from '../src/temporal/connect';
import { createWorker, workflowsPath } from '../src/temporal/worker';
import { KEY_TABLES } from '../activities/dump';
import { createSandboxInstance, type SandboxInstance } from '../sandbox/instance';
import { runComparison, wantsComparison } from './bench-compare';
import { emptyBucket } from '../sandbox/recordings';
import type { BackupResult } from '../workflows/backup-types';
import type { RestoreInput, RestoreReport } from '../workflows/restore-types';
import { DEPLOYMENT, OPERATION } from '../workflows/search-attributes';

const KIB = 1024;
const MIB = 1024 * 1024;
const SAMPLE_MS = 100;

const USAGE = `usage: npm run bench -- [options]   (or: bash scripts/bench.sh [options])

  --audit N          audit-log rows seeded (the bulk of the dump)            default 200000
  --recordings N     recordings seeded                                       default 1000
  --recording-kib N  size of each recording, KiB                             default 64
  --resources N      resources seeded (each with 2 Safes of 3 credentials)   default 100
  --concurrency N    recordings copied at once (backup.concurrency)          default 8, the configuration's
  --skip-double      skip the second full backup with twice the data (the write-pause comparison)
  --large            add a phase with large recordings: memory against object size
  --large-count N    large recordings in that phase                          default 20
  --large-mib N      size of each large recording, MiB                       default 64
  --keep             leave the sandbox instance and the backups in place (they are removed by default)`;

interface BenchOptions {
  audit: number;
  recordings: number;
  recordingBytes: number;
  resources: number;
  concurrency: number | undefined;
  double: boolean;
  large: boolean;
  largeCount: number;
  largeBytes: number;
  keep: boolean;
}

/** Strict: an unknown or misspelt flag is refused rather than ignored, so a run measures what was asked. */
function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      audit: { type: 'string' },
      recordings: { type: 'string' },
      'recording-kib': { type: 'string' },
      resources: { type: 'string' },
      concurrency: { type: 'string' },
      'skip-double': { type: 'boolean', default: false },
      large: { type: 'boolean', default: false },
      'large-count': { type: 'string' },
      'large-mib': { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
}

function parseOptions(argv: string[]): BenchOptions | undefined {
  let parsed;
  try {
    parsed = parseFlags(argv);
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; see --help`);
  }
  const { values } = parsed;
  if (values.help) return undefined;
  const count = (flag: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag}: give a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`);
    return n;
  };
  return {
    audit: count('audit', values.audit, 200_000, 0, 100_000_000),
    recordings: count('recordings', values.recordings, 1000, 1, 10_000_000),
    recordingBytes: count('recording-kib', values['recording-kib'], 64, 1, 1024 * 1024) * KIB,
    resources: count('resources', values.resources, 100, 1, 1_000_000),
    concurrency: values.concurrency === undefined ? undefined : count('concurrency', values.concurrency, 8, 1, 256),
    double: !values['skip-double'],
    large: values.large === true,
    largeCount: count('large-count', values['large-count'], 20, 1, 10_000),
    // The sandbox seeds a recording in one buffer, and the seed schema caps it at 1 GiB.
    largeBytes: count('large-mib', values['large-mib'], 64, 1, 1024) * MIB,
    keep: values.keep === true,
  };
}

class UsageError extends Error {}

/** Set by Ctrl-C: the failure that follows is the interruption, not a finding. */
let interrupted = false;

// ---------------------------------------------------------------------------------------------- measuring

interface Measured<T> {
  value: T;
  ms: number;
  /** [epoch ms, RSS] every 100 ms: lets each step of a workflow get its own peak. */
  samples: [number, number][];
  /** User + system CPU time of this process during the phase: the worker's share of the work. */
  cpuMs: number;
  startRss: number;
  peakRss: number;
}

/**
 * Runs one phase while sampling RSS every 100 ms. A full GC first (when node runs with --expose-gc, as
 * scripts/bench.sh does) so the peak belongs to this phase rather than to garbage the previous one left.
 */
async function measure<T>(work: () => Promise<T>): Promise<Measured<T>> {
  (globalThis as { gc?: () => void }).gc?.();
  const startRss = process.memoryUsage.rss();
  let peakRss = startRss;
  const samples: [number, number][] = [[Date.now(), startRss]];
  const timer = setInterval(() => {
    const rss = process.memoryUsage.rss();
    samples.push([Date.now(), rss]);
    peakRss = Math.max(peakRss, rss);
  }, SAMPLE_MS);
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  try {
    const value = await work();
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    return { value, ms, samples, cpuMs: (cpu.user + cpu.system) / 1000, startRss, peakRss };
  } finally {
    clearInterval(timer);
  }
}

type Timestamp = { seconds?: unknown; nanos?: number | null } | null | undefined;

function timestampMs(ts: Timestamp): number {
  return Number(ts?.seconds ?? 0) * 1000 + Math.floor((ts?.nanos ?? 0) / 1e6);
}

interface StepFigures {
  ms: number;
  /** Highest RSS sampled while the step ran (undefined when it was shorter than one sample). */
  peakRss: number | undefined;
}

/**
 * Time spent in each activity type, from scheduling to completion, read from the workflow's own history (the
 * per-step split the workflow result does not carry), and the peak of the RSS samples taken in that interval.
 * The server's clock is this machine's. Parallel activities of one type (replicate) are summed.
 */
async function stepTimes(handle: WorkflowHandle, samples: [number, number][]): Promise<Map<string, StepFigures>> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, { type: string; at: number }>();
  const totals = new Map<string, StepFigures>();
  for (const event of history.events ?? []) {
    const at = timestampMs(event.eventTime);
    const scheduling = event.activityTaskScheduledEventAttributes;
    if (scheduling) {
      scheduled.set(String(event.eventId), { type: scheduling.activityType?.name ?? 'unknown', at });
      continue;
    }
    const done = event.activityTaskCompletedEventAttributes;
    const from = done ? scheduled.get(String(done.scheduledEventId)) : undefined;
    if (!from) continue;
    const previous = totals.get(from.type);
    const peaks = samples.filter(([t]) => t >= from.at && t <= at).map(([, rss]) => rss);
    const peak = peaks.length ? Math.max(...peaks) : undefined;
    totals.set(from.type, {
      ms: (previous?.ms ?? 0) + at - from.at,
      peakRss: previous?.peakRss === undefined ? peak : peak === undefined ? previous.peakRss : Math.max(previous.peakRss, peak),
    });
  }
  return totals;
}

// ---------------------------------------------------------------------------------------------- formatting

const seconds = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
const mib = (bytes: number) => `${(bytes / MIB).toFixed(bytes < 10 * MIB ? 2 : 1)} MiB`;
const perSecond = (amount: number, ms: number) => (ms > 0 ? amount / (ms / 1000) : 0);
const size = (bytes: number) => (bytes >= MIB ? `${bytes / MIB} MiB` : `${bytes / KIB} KiB`);

function markdownTable(head: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (align[i] === 'r' ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------- the stack

/** The sandbox's own seeding CLI in a child process, so its recording buffers stay out of this process's RSS. */
async function seedInstance(instance: SandboxInstance, flags: Record<string, number>): Promise<number> {
  const args = ['--import', 'tsx', join(repoRoot, 'sandbox', 'seed.ts'), '--config', instance.configPath];
  for (const [flag, value] of Object.entries(flags)) args.push(`--${flag}`, String(value));
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`seeding ${instance.name} failed (exit ${code}):\n${output.trim()}`);
  return performance.now() - started;
}

/** The local stack's configuration with this run's instance as production and every location under `prefix`. */
function benchConfig(instance: SandboxInstance, prefix: string, concurrency: number | undefined, deploymentName = instance.deployment.name): Config {
  const base = localStackConfig();
  const input: ConfigInput = {
    ...base,
    deployment: { ...instance.deployment, name: deploymentName },
    staging: undefined,
    locations: base.locations.map((location) => ({ ...location, prefix })),
    // The benchmark times the restore itself: its pre-confirmed restores need a target without approvals.
    restore: { ...base.restore, approvals: { production: 0, staging: 0 } },
    ...(concurrency === undefined ? {} : { backup: { ...base.backup, concurrency } }),
  };
  return parseConfig(input);
}

/** Deletes every key this run wrote in each location (the whole prefix is this run's), then the empty directory. */
async function deletePrefix(config: Config, deps: Dependencies): Promise<number> {
  let deleted = 0;
  for (const location of deps.locations()) {
    const keys: string[] = [];
    for await (const object of location.list('')) keys.push(object.key);
    for (let i = 0; i < keys.length; i += 1000) await location.delete(keys.slice(i, i + 1000));
    deleted += keys.length;
    const settings = config.locations.find((l) => l.name === location.name);
    if (settings?.kind === 'filesystem' && settings.prefix) {
      const root = join(settings.path, settings.prefix);
      // The driver prunes emptied directories up to its root, which is this run's prefix: only that one is left.
      if ((await readdir(root).catch(() => ['?'])).length === 0) await rmdir(root);
    }
  }
  return deleted;
}

/**
 * The exact row counts the dump step takes while writes are paused, timed alone on the same tables (median of
 * three): the part of the pause that reads whole tables, so grows with the database.
 */
async function timeRowCounts(config: Config, deps: Dependencies): Promise<{ ms: number; rows: number }> {
  return withClient(config.deployment.postgres, deps.postgresPassword('production'), async (client) => {
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < 3; i += 1) {
      const started = performance.now();
      const counts = await countRows(client, [...KEY_TABLES]);
      times.push(performance.now() - started);
      rows = Object.values(counts).reduce((a, b) => a + b, 0);
    }
    return { ms: times.sort((a, b) => a - b)[1]!, rows };
  });
}

/**
 * Drops the databases a full restore leaves beside the live one (the previous one it set aside, or a restored
 * copy when the run was interrupted): destroying the instance drops only its live database. They are named after
 * the live database plus a suffix, and the live name is this run's alone.
 */
async function dropRestoreDatabases(config: Config, deps: Dependencies): Promise<string[]> {
  const pg = config.deployment.postgres;
  const password = deps.postgresPassword('production');
  const names = await withClient(pg, password, async (client) =>
    (await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [`${pg.database}_`])).rows.map((r) => r.datname),
  );
  for (const name of names) await dropDatabase(pg, password, name, { ifExists: true, force: true });
  return names;
}

// ---------------------------------------------------------------------------------------------- phases

interface BackupRun {
  result: BackupResult;
  measured: Measured<BackupResult>;
  steps: Map<string, StepFigures>;
}

interface Figures {
  phases: string[][];
  backupSteps: { name: string; steps: Map<string, StepFigures> }[];
  restoreSteps?: Map<string, StepFigures>;
  pauses: { label: string; pauseMs: number; dumpBytes: number; rows: number; objects: number; countMs: number }[];
  memory: { label: string; largest: number; peakRss: number; startRss: number }[];
}

async function bench(options: BenchOptions, instance: SandboxInstance, config: Config, deps: Dependencies, client: Client, taskQueue: string, started: WorkflowHandle[]): Promise<Figures> {
  const figures: Figures = { phases: [], backupSteps: [], pauses: [], memory: [] };
  const row = (phase: string, m: Measured<unknown>, text: string) => figures.phases.push([phase, seconds(m.ms), seconds(m.cpuMs), text, mib(m.peakRss)]);
  const progress = (text: string) => console.error(`bench: ${text}`);

  const backup = async (label: string, which: Config): Promise<BackupRun> => {
    progress(`${label}: backup of ${which.deployment.name}`);
    let handle: WorkflowHandle | undefined;
    const measured = await measure(async () => {
      handle = await startBackup(client, which, { taskQueue, reason: `benchmark: ${label}`, requestedBy: 'bench' });
      started.push(handle);
      return backupResult(handle);
    });
    const steps = await stepTimes(handle!, measured.samples);
    figures.backupSteps.push({ name: label, steps });
    return { result: measured.value, measured, steps };
  };

  const seedFlags = (scale: number) => ({
    resources: options.resources * scale,
    connectors: 20 * scale,
    audit: options.audit * scale,
    recordings: options.recordings * scale,
    'recording-bytes': options.recordingBytes,
  });
  const onlyRecordings = (count: number, bytes: number, concurrency: number) => ({
    organisations: 0,
    resources: 0,
    connectors: 0,
    audit: 0,
    recordings: count,
    'recording-bytes': bytes,
    concurrency,
  });

  progress(`seeding ${options.audit} audit rows and ${options.recordings} recordings of ${size(options.recordingBytes)}`);
  const seedMs = await seedInstance(instance, seedFlags(1));
  figures.phases.push(['seed (child process, not sampled)', seconds(seedMs), '-', `${options.audit} audit rows, ${options.resources} resources, ${options.recordings} recordings × ${size(options.recordingBytes)}`, '-']);

  // 1. Full backup.
  const full = await backup('full 1×', config);
  const dumpMs = full.steps.get('dump')?.ms ?? full.measured.ms;
  const syncMs = full.steps.get('syncRecordings')?.ms ?? full.measured.ms;
  const counted = await timeRowCounts(config, deps);
  row(
    'full backup',
    full.measured,
    `dump ${mib(full.result.dumpBytes)} (pg_dump -Fc output), ${perSecond(full.result.dumpBytes / MIB, dumpMs).toFixed(1)} MiB/s, ${Math.round(perSecond(counted.rows, dumpMs))} rows/s; ` +
      `recordings ${full.result.recordings.copiedObjects} objects / ${mib(full.result.recordings.copiedBytes)} copied, ` +
      `${perSecond(full.result.recordings.copiedObjects, syncMs).toFixed(0)} obj/s, ${perSecond(full.result.recordings.copiedBytes / MIB, syncMs).toFixed(1)} MiB/s; ` +
      `write pause ${seconds(full.result.pauseMs)}`,
  );
  figures.pauses.push({ label: '1×', pauseMs: full.result.pauseMs, dumpBytes: full.result.dumpBytes, rows: counted.rows, objects: full.result.recordings.objects, countMs: counted.ms });
  figures.memory.push({ label: 'full backup', largest: options.recordingBytes, peakRss: full.measured.peakRss, startRss: full.measured.startRss });

  // 2. Incremental backup after 1 % more recordings.
  const added = Math.max(1, Math.ceil(options.recordings / 100));
  progress(`adding ${added} recordings`);
  await seedInstance(instance, onlyRecordings(added, options.recordingBytes, 16));
  const incremental = await backup('incremental', config);
  if (incremental.result.recordings.copiedObjects !== added) {
    throw new Error(`the incremental backup copied ${incremental.result.recordings.copiedObjects} recordings, ${added} were added: it is not incremental`);
  }
  row(
    'incremental backup (+1 % recordings)',
    incremental.measured,
    `${incremental.result.recordings.copiedObjects} of ${incremental.result.recordings.objects} objects copied (${incremental.result.recordings.reusedObjects} reused); ` +
      `dump ${mib(incremental.result.dumpBytes)}; write pause ${seconds(incremental.result.pauseMs)}`,
  );

  // 3. Verify, standard then deep, of the newest backup.
  for (const deep of [false, true]) {
    progress(`verify ${deep ? 'deep' : 'standard'}`);
    const verified = await measure(() => runVerify(client, config, incremental.result.backupId, deep, taskQueue));
    if (!verified.value.ok) throw new Error(`verify failed: ${JSON.stringify(verified.value.locations)}`);
    const blobs = verified.value.locations.map((l) => `${l.name} ${l.level ?? '?'} ${l.blobsChecked ?? 0} blobs`).join(', ');
    row(`verify ${deep ? '--deep' : 'standard'}`, verified, `${verified.value.locations.length} locations: ${blobs}`);
  }

  // 4. Full restore after losing the whole recordings bucket, so the recordings step restores every object.
  const lost = await emptyBucket(deps.recordingsClient('production'), config.deployment.recordings.bucket);
  progress(`restore of ${incremental.result.backupId} (${lost} recordings deleted first)`);
  let restoreHandle: WorkflowHandle | undefined;
  const restored = await measure(async () => {
    restoreHandle = await startFullRestore(client, config, incremental.result.backupId, taskQueue);
    started.push(restoreHandle);
    return (await restoreHandle.result()) as RestoreReport;
  });
  const report = restored.value;
  if (report.status !== 'completed') throw new Error(`the restore ended ${report.status}: ${report.error ?? ''}`);
  figures.restoreSteps = await stepTimes(restoreHandle!, restored.samples);
  row(
    'full restore (no safety snapshot)',
    restored,
    `RTO ${seconds(report.rtoMs ?? 0)} (stop → smoke test); ${report.recordings?.restored ?? 0} recordings restored, ` +
      `${report.recordings?.unchanged ?? 0} unchanged; ${report.verify?.found.audit_log ?? '?'} audit rows verified`,
  );
  figures.memory.push({ label: 'full restore', largest: options.recordingBytes, peakRss: restored.peakRss, startRss: restored.startRss });

  // 5. The write pause with twice the data: a full backup again, under a deployment name with no earlier backup.
  let latest = config;
  if (options.double) {
    progress('doubling the data');
    await seedInstance(instance, seedFlags(1));
    latest = benchConfig(instance, config.locations[0]!.prefix ?? '', options.concurrency, `${instance.deployment.name}-2x`);
    const double = await backup('full 2×', latest);
    const doubleSync = double.steps.get('syncRecordings')?.ms ?? double.measured.ms;
    const doubleDump = double.steps.get('dump')?.ms ?? double.measured.ms;
    const doubleCounted = await timeRowCounts(latest, deps);
    row(
      'full backup, 2× data',
      double.measured,
      `dump ${mib(double.result.dumpBytes)}, ${perSecond(double.result.dumpBytes / MIB, doubleDump).toFixed(1)} MiB/s, ${Math.round(perSecond(doubleCounted.rows, doubleDump))} rows/s; ` +
        `recordings ${double.result.recordings.copiedObjects} objects, ${perSecond(double.result.recordings.copiedBytes / MIB, doubleSync).toFixed(1)} MiB/s; ` +
        `write pause ${seconds(double.result.pauseMs)}`,
    );
    figures.pauses.push({ label: '2×', pauseMs: double.result.pauseMs, dumpBytes: double.result.dumpBytes, rows: doubleCounted.rows, objects: double.result.recordings.objects, countMs: doubleCounted.ms });
  }

  // 6. Memory against object size: large recordings through an incremental backup (only they are copied).
  if (options.large) {
    progress(`adding ${options.largeCount} recordings of ${size(options.largeBytes)}`);
    // Two uploads at a time: the seeding process holds each recording whole in memory.
    await seedInstance(instance, onlyRecordings(options.largeCount, options.largeBytes, 2));
    const large = await backup('large', latest);
    const largeSync = large.steps.get('syncRecordings')?.ms ?? large.measured.ms;
    row(
      `incremental backup, ${options.largeCount} × ${size(options.largeBytes)}`,
      large.measured,
      `${large.result.recordings.copiedObjects} objects / ${mib(large.result.recordings.copiedBytes)} copied, ${perSecond(large.result.recordings.copiedBytes / MIB, largeSync).toFixed(1)} MiB/s`,
    );
    figures.memory.push({ label: 'incremental, large recordings', largest: options.largeBytes, peakRss: large.measured.peakRss, startRss: large.measured.startRss });
  }
  return figures;
}

/**
 * A pre-confirmed full restore without the safety snapshot. startRestore() does not pass `safetySnapshot` on, so
 * the workflow is started here with the same id, search attributes and input shape it would give.
 */
async function startFullRestore(client: Client, config: Config, backupId: string, taskQueue: string): Promise<WorkflowHandle> {
  const deployment = config.deployment.name;
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
  return client.workflow.start('restoreWorkflow', {
    taskQueue,
    workflowId: restoreWorkflowId(deployment),
    args: [input],
    typedSearchAttributes: [
      { key: DEPLOYMENT, value: deployment },
      { key: OPERATION, value: 'restore' },
    ],
    staticSummary: `Benchmark restore of ${deployment} from ${backupId}`,
  });
}

// ---------------------------------------------------------------------------------------------- report

const load = () => loadavg().map((n) => n.toFixed(2)).join(' ');

/** The commit measured, so figures can be compared across changes; "unknown" outside a git checkout. */
function codeVersion(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    // Porcelain lines are "XY path": the status columns may be spaces, so the output is not trimmed before slicing.
    const changed = git('status', '--porcelain', '--untracked-files=no').split('\n').filter(Boolean).map((line) => line.slice(3));
    const dirty = changed.length === 0 ? '' : changed.length <= 3 ? ` with uncommitted changes to ${changed.join(', ')}` : ` with uncommitted changes to ${changed.length} files`;
    return `${git('rev-parse', '--short', 'HEAD').trim()}${dirty}`;
  } catch {
    return 'unknown';
  }
}

/** The figures as markdown (what docs/benchmarks.md holds). */
function formatReport(options: BenchOptions, figures: Figures, argv: string[], loadAtStart: string, code: string): string {
  const out: string[] = [];
  const print = (text: string) => out.push(text);
  const cpu = cpus();
  print(`\n## Machine\n`);
  print(`${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, ${osType()} ${release()}, Node ${process.version}`);
  // Other work on the machine shares the cores with the worker, PostgreSQL, the S3 server and Temporal: say how much.
  print(`load average (1, 5, 15 min) at start: ${loadAtStart}; at end: ${load()}`);
  print(`\n## Command\n\n    npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}\n`);
  print(`Code: ${code}.`);
  print(`Copy concurrency (backup.concurrency): ${options.concurrency ?? localStackConfig().backup?.concurrency ?? 8}. Largest recording: ${size(options.large ? Math.max(options.largeBytes, options.recordingBytes) : options.recordingBytes)}. Peak RSS: this process (worker and client), sampled every ${SAMPLE_MS} ms; pg_dump and pg_restore run as child processes and are not in it.\n`);
  print(markdownTable(['phase', 'wall time', 'worker CPU', 'figures', 'peak RSS'], figures.phases, ['l', 'r', 'r', 'l', 'r']));

  if (figures.pauses.length) {
    print('\n### Write pause against data size\n');
    print(
      markdownTable(
        ['data', 'rows (key tables)', 'dump', 'recordings', 'write pause', 'exact row counts alone'],
        figures.pauses.map((p) => [p.label, String(p.rows), mib(p.dumpBytes), String(p.objects), seconds(p.pauseMs), seconds(p.countMs)]),
        ['l', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    print('\nThe row counts are read from the snapshot just after the pause (activities/dump.ts), so they do not lengthen it.');
  }

  print('\n### Memory against recording size\n');
  print(markdownTable(['phase', 'largest recording', 'RSS at start', 'peak RSS'], figures.memory.map((m) => [m.label, size(m.largest), mib(m.startRss), mib(m.peakRss)]), ['l', 'r', 'r', 'r']));

  const backupOrder = ['prepareBackup', 'quiesce', 'dump', 'snapshotRecordings', 'syncRecordings', 'verifyBackup', 'replicate', 'commitBackup', 'unquiesce'];
  const types = [...new Set([...backupOrder, ...figures.backupSteps.flatMap((b) => [...b.steps.keys()])])].filter((t) => figures.backupSteps.some((b) => b.steps.has(t)));
  const cell = (step: StepFigures | undefined) => (step ? `${seconds(step.ms)} / ${step.peakRss === undefined ? '-' : mib(step.peakRss)}` : '-');
  print('\n### Backup steps: time (activity scheduled → completed) / peak RSS\n');
  print(markdownTable(['activity', ...figures.backupSteps.map((b) => b.name)], types.map((t) => [t, ...figures.backupSteps.map((b) => cell(b.steps.get(t)))]), ['l', ...figures.backupSteps.map(() => 'r' as const)]));

  if (figures.restoreSteps) {
    print('\n### Restore steps: time (activity scheduled → completed) / peak RSS\n');
    print(markdownTable(['activity', 'full restore'], [...figures.restoreSteps].map(([t, step]) => [t, cell(step)]), ['l', 'r']));
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------- main

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  if (!options) {
    console.log(USAGE);
    return;
  }
  const loadAtStart = load();
  // Read before anything runs: the code loaded is the code measured, whatever changes in the checkout meanwhile.
  const code = codeVersion();
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const suffix = randomBytes(4).toString('hex');
  const prefix = `bench-${suffix}`;
  console.error(`bench: creating sandbox instance ${prefix}`);
  const instance = await createSandboxInstance({ name: prefix });
  const config = benchConfig(instance, prefix, options.concurrency);
  const deps = createDependencies(config);
  const started: WorkflowHandle[] = [];
  let bundleDir: string | undefined;
  let client: Client | undefined;
  let report: string | undefined;

  // Ctrl-C: end the workflows this run started, so their results reject and the cleanup below runs.
  const interrupt = () => {
    interrupted = true;
    console.error('bench: interrupted; terminating this run\'s workflows, then cleaning up');
    for (const handle of started) handle.terminate('benchmark interrupted').catch(() => undefined);
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);

  try {
    // Bundled before the worker starts, so bundling is neither in a phase's wall time nor in its memory.
    bundleDir = await mkdtemp(join(tmpdir(), 'vaultpam-bench-'));
    const bundlePath = join(bundleDir, 'workflow-bundle.js');
    const quiet = { info: () => {}, warn: () => {}, error: console.error, debug: () => {}, trace: () => {}, log: () => {} };
    await writeFile(bundlePath, (await bundleWorkflowCode({ workflowsPath, logger: quiet })).code);

    client = await connectClient(config);
    const taskQueue = `bench-${randomUUID()}`;
    const { worker, connection } = await createWorker({ config, deps, taskQueue, workflowBundlePath: bundlePath, options: { shutdownGraceTime: '2 seconds' } });
    let figures: Figures;
    try {
      figures = await worker.runUntil(bench(options, instance, config, deps, client, taskQueue, started));
    } finally {
      await connection.close();
    }
    report = formatReport(options, figures, argv, loadAtStart, code);
  } finally {
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
    await client?.connection.close().catch(() => undefined);
    if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
    if (options.keep) {
      console.error(`bench: kept sandbox instance ${instance.configPath} and backups under prefix "${prefix}"; remove the instance with: node --import tsx sandbox/instance.ts destroy ${instance.configPath}`);
    } else {
      const deleted = await deletePrefix(config, deps);
      const dropped = await dropRestoreDatabases(config, deps);
      await instance.destroy();
      console.error(`bench: removed sandbox instance ${instance.name}, ${dropped.length} database(s) a restore set aside and ${deleted} backup objects under prefix "${prefix}"`);
    }
  }
  // Printed only after the cleanup: a closed stdout (npm run bench | head) must not leave the instance behind.
  process.stdout.write(report);
}

// Only as a script: importing this module runs nothing.
if (isEntryPoint(import.meta.url)) {
  const argv = process.argv.slice(2);
  // --compare / --scale: the product beside rclone and pg_dump/pg_restore, and past these sizes (scripts/bench-compare.ts).
  if (wantsComparison(argv)) void runComparison(argv);
  else main(argv).catch(failed);
}

function failed(error: unknown): void {
  if (interrupted) {
    console.error('bench: interrupted; no figures');
    process.exitCode = 130;
    return;
  }
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  if (!(error instanceof UsageError) && error instanceof Error && error.stack) console.error(error.stack);
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
