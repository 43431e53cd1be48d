// The crash matrix: a worker SIGKILLed once inside every activity of a backup and of a restore (at its start, at a
// heartbeat, and after its work but before its result), then a second worker takes over. Each run must complete or
// roll back, nothing committed may be lost, and `check --read-data` must find the repository clean. Writes
// docs/reliability.md (scenario, runs, survived, data lost) and prints the same table.
//
//   npm run reliability -- [--only <activity substring>] [--points heartbeat,end | start,heartbeat,end] [--no-write]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import proto from '@temporalio/proto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime, bundleWorkflowCode } from '@temporalio/worker';
import { listBackups } from '../src/catalog/catalog';
import { readRecordingsIndex } from '../src/catalog/recordings-index';
import { parseConfig } from '../src/config/load';
import { localStackConfig, repoRoot } from '../src/config/local-stack';
import type { Config } from '../src/config/schema';
import { unwrapKey } from '../src/crypto';
import { startBackup } from '../src/operations/backup';
import { checkResult, startCheck } from '../src/operations/check';
import { startRestore } from '../src/operations/restore';
import { tableChecksums } from '../src/postgres';
import { FAULT_POINT_DIR_ENV, FAULT_POINT_ENV } from '../src/runtime/fault-points';
import { createDependencies, type Dependencies } from '../src/runtime/dependencies';
import { isEntryPoint } from '../src/runtime/entry-point';
import { connectClient } from '../src/temporal/connect';
import { workflowsPath } from '../src/temporal/worker';
import { createSandboxInstance, type SandboxInstance } from '../sandbox/instance';
import { loadSandboxConfig } from '../sandbox/sandbox-config';
import { seed } from '../sandbox/seed';
import { startWorkerProcess, type WorkerProcess } from '../test/support/worker-process';
import type { RestoreReport } from '../workflows/restore-types';
import type { Principal } from '../src/auth/principal';

/** Who the matrix's restores are requested by (signed with the local stack's approvals key). */
const RELIABILITY_PRINCIPAL: Principal = { id: 'reliability', roles: ['restorer'], via: 'development' };

const EventType = proto.temporal.api.enums.v1.EventType;
const TABLES = ['organisations', 'users', 'resources', 'safes', 'credentials', 'connectors', 'audit_log', 'sessions'];
/** Activities every workflow runs for bookkeeping (the lock, timeouts): crashes there are covered by the rest. */
const BOOKKEEPING = new Set(['activityTimeouts']);
const HEARTBEAT_OCCURRENCE = 2;

type Point = 'start' | 'heartbeat' | 'end';
interface Outcome {
  scenario: string;
  reached: boolean;
  survived: boolean;
  dataLost: boolean;
  status: string;
  note: string;
}

interface Bench {
  config: Config;
  deps: Dependencies;
  client: Client;
  taskQueue: string;
  bundlePath: string;
  instance: SandboxInstance;
  faultDir: string;
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** The activity types a workflow ran, in first-run order, from its history. */
async function activityTypes(handle: WorkflowHandle): Promise<{ name: string; heartbeats: boolean }[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const seen = new Map<string, boolean>();
  for (const e of events) {
    if (e.eventType !== EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) continue;
    const attrs = e.activityTaskScheduledEventAttributes!;
    const name = attrs.activityType!.name!;
    if (BOOKKEEPING.has(name)) continue;
    const heartbeats = Number(attrs.heartbeatTimeout?.seconds ?? 0) > 0 || Number(attrs.heartbeatTimeout?.nanos ?? 0) > 0;
    if (!seen.has(name)) seen.set(name, heartbeats);
  }
  return [...seen.entries()].map(([name, heartbeats]) => ({ name, heartbeats }));
}

async function worker(b: Bench, identity: string, fault?: string): Promise<WorkerProcess> {
  const env: Record<string, string> = fault ? { [FAULT_POINT_ENV]: fault, [FAULT_POINT_DIR_ENV]: join(b.faultDir, identity) } : {};
  // A worker without a fault must not inherit one from this process's environment.
  if (!fault && process.env[FAULT_POINT_ENV]) delete process.env[FAULT_POINT_ENV];
  return startWorkerProcess({ taskQueue: b.taskQueue, config: b.config, workflowBundlePath: b.bundlePath, identity }, 60_000, env);
}

/** Bucket listing (key -> ETag) and per-table checksums: what a restore may change. */
async function fingerprint(b: Bench): Promise<{ objects: Map<string, string>; checksums: Record<string, string> }> {
  const objects = new Map<string, string>();
  const client = b.deps.recordingsClient('production');
  for await (const o of client.listObjectsV2(b.config.deployment.recordings.bucket, '', true) as AsyncIterable<{ name: string; etag: string }>) {
    if (!o.name.startsWith('.vaultpam-backup/')) objects.set(o.name, o.etag.replace(/"/g, ''));
  }
  const pg = b.config.deployment.postgres;
  return { objects, checksums: await tableChecksums(pg, b.deps.postgresPassword('production'), pg.database, TABLES) };
}

/** Every committed backup, with its index's recordings (key -> ETag), to prove none is lost by a crash. */
async function committedBackups(b: Bench): Promise<Map<string, number>> {
  const catalog = await listBackups(b.deps.locations(), b.config.deployment.name, { strict: true, keyRing: b.deps.keyRing() });
  return new Map(catalog.map((e) => [e.backupId, e.manifest.recordings.objects]));
}

/** Runs `check --read-data` with the worker still running (then stops it). */
async function checkClean(b: Bench, running: WorkerProcess): Promise<string | undefined> {
  try {
    const handle = await startCheck(b.client, b.config, { readData: 'all', requestedBy: 'reliability', taskQueue: b.taskQueue });
    const report = await checkResult(b.client, handle.workflowId);
    return report.ok ? undefined : `check --read-data: ${report.problems.slice(0, 3).map((p) => `${p.location} ${p.kind} ${p.recordingKey ?? p.artifact ?? ''}`).join('; ')}`;
  } finally {
    await running.stop(5000);
  }
}

/** Runs one workflow with a worker that dies at `fault`, then lets a second worker finish it. */
async function crashRun(b: Bench, fault: string, start: () => Promise<WorkflowHandle>): Promise<{ reached: boolean; result: unknown; error?: Error; survivor: WorkerProcess }> {
  const id = randomBytes(3).toString('hex');
  const first = await worker(b, `crash-${id}-first`, fault);
  const handle = await start();
  const outcome = handle.result().then(
    (result) => ({ result, error: undefined }),
    (error: Error) => ({ result: undefined, error }),
  );
  // The first worker either dies at the point, or the workflow ends without meeting it.
  const raced = await Promise.race([first.exited.then(() => 'killed' as const), outcome.then(() => 'ended' as const)]);
  const reached = raced === 'killed' && (await first.exited).signal === 'SIGKILL';
  // The survivor finishes the job, then serves the check that follows.
  const survivor = raced === 'killed' ? await worker(b, `crash-${id}-second`) : first;
  const ended = await outcome;
  if (survivor !== first) await first.stop(2000);
  return { reached, result: ended.result, ...(ended.error ? { error: ended.error } : {}), survivor };
}

async function backupScenario(b: Bench, activity: string, point: Point): Promise<Outcome> {
  const scenario = `backup: ${activity} (${point})`;
  const fault = `activity:${activity}:${point}${point === 'heartbeat' ? `@${HEARTBEAT_OCCURRENCE}` : ''}`;
  const before = await committedBackups(b);
  await seed(await loadSandboxConfig(b.instance.configPath), { organisations: 1, usersPerOrg: 1, resources: 1, connectors: 0, auditEntries: 5, recordings: 3, recordingBytes: 3000 });
  const run = await crashRun(b, fault, () => startBackup(b.client, b.config, { taskQueue: b.taskQueue, reason: `crash matrix: ${scenario}` }));
  const after = await committedBackups(b);
  const committed = run.error === undefined;
  // A backup that failed must have undone itself: its id is in no catalog; one that committed adds exactly one backup.
  // Retention keeps 30 and fewer scenarios run: every backup committed before the run must still be there.
  const lostBackups = [...before.keys()].filter((id) => !after.has(id));
  const problem = await checkClean(b, run.survivor);
  const survived = problem === undefined && (committed ? after.size >= 1 : true);
  return {
    scenario,
    reached: run.reached,
    survived,
    dataLost: lostBackups.length > 0 || problem !== undefined,
    status: committed ? 'committed' : `failed, undone (${run.error!.message.slice(0, 80)})`,
    note: problem ?? '',
  };
}

async function restoreScenario(b: Bench, backupId: string, activity: string, point: Point): Promise<Outcome> {
  const scenario = `restore: ${activity} (${point})`;
  const fault = `activity:${activity}:${point}${point === 'heartbeat' ? `@${HEARTBEAT_OCCURRENCE}` : ''}`;
  // Something for the restore to undo: a few recordings gone, one resource deleted.
  const client = b.deps.recordingsClient('production');
  const bucket = b.config.deployment.recordings.bucket;
  const live = await fingerprint(b);
  for (const key of [...live.objects.keys()].slice(0, 3)) await client.removeObject(bucket, key);
  const before = await fingerprint(b);
  const run = await crashRun(b, fault, () => startRestore(b.client, b.config, { backupId, confirmed: true, safetySnapshot: false, reason: `crash matrix: ${scenario}`, principal: RELIABILITY_PRINCIPAL, taskQueue: b.taskQueue }));
  const after = await fingerprint(b);
  const report = (run.result ?? (run.error as { cause?: { details?: RestoreReport[] } } | undefined)?.cause?.details?.[0]) as RestoreReport | undefined;
  const status = report?.status ?? 'unknown';
  let dataLost = false;
  let note = '';
  if (status === 'completed') {
    // The backup's recordings are all there with their ETags.
    const manifest = (await listBackups(b.deps.locations(), b.config.deployment.name, { keyRing: b.deps.keyRing() })).find((e) => e.backupId === backupId)!.manifest;
    const dataKey = unwrapKey(manifest.encryption.dataKey, b.deps.keyRing());
    for await (const e of readRecordingsIndex(b.deps.locations()[0]!, manifest.artifacts.recordingsIndex, dataKey)) {
      if (after.objects.get(e.key) !== e.etag) {
        dataLost = true;
        note = `recording ${e.key} not restored`;
        break;
      }
    }
  } else if (status === 'rolled-back' || status === 'refused') {
    // Exactly as before: every live recording with its ETag, every table's checksum.
    const same = JSON.stringify([...before.objects].sort()) === JSON.stringify([...after.objects].sort()) && JSON.stringify(before.checksums) === JSON.stringify(after.checksums);
    if (!same) {
      dataLost = true;
      note = 'the deployment differs from before the restore';
    }
  } else {
    dataLost = true;
    note = `restore ended ${status}: ${report?.error ?? run.error?.message ?? ''}`.slice(0, 160);
  }
  const problem = await checkClean(b, run.survivor);
  if (problem) note = `${note} ${problem}`.trim();
  return { scenario, reached: run.reached, survived: !dataLost && problem === undefined && (status === 'completed' || status === 'rolled-back'), dataLost: dataLost || problem !== undefined, status, note };
}

function table(outcomes: Outcome[]): string {
  const rows = new Map<string, { runs: number; survived: number; lost: number; statuses: Set<string>; notes: Set<string> }>();
  for (const o of outcomes.filter((x) => x.reached)) {
    const row = rows.get(o.scenario) ?? { runs: 0, survived: 0, lost: 0, statuses: new Set(), notes: new Set() };
    row.runs += 1;
    if (o.survived) row.survived += 1;
    if (o.dataLost) row.lost += 1;
    row.statuses.add(o.status.replace(/ \(.*$/, ''));
    if (o.note) row.notes.add(o.note);
    rows.set(o.scenario, row);
  }
  const lines = ['| scenario | runs | survived | data lost | ended as |', '|---|---|---|---|---|'];
  for (const [scenario, r] of rows) lines.push(`| ${scenario} | ${r.runs} | ${r.survived} | ${r.lost} | ${[...r.statuses].join(', ')}${r.notes.size ? `; ${[...r.notes].join('; ')}` : ''} |`);
  const skipped = outcomes.filter((x) => !x.reached).map((x) => x.scenario);
  if (skipped.length) lines.push('', `Points never reached (the activity has no such moment, e.g. no second heartbeat): ${skipped.join(', ')}.`);
  return lines.join('\n');
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { only: { type: 'string' }, points: { type: 'string', default: 'heartbeat,end' }, 'no-write': { type: 'boolean', default: false } } });
  const points = values.points.split(',').filter(Boolean) as Point[];
  execFileSync('bash', [join(repoRoot, 'scripts', 'stack.sh'), 'up'], { stdio: ['ignore', 2, 2] });
  Runtime.install({ logger: new DefaultLogger('ERROR') });

  const faultDir = await mkdtemp(join(tmpdir(), 'vaultpam-faults-'));
  const bundlePath = join(faultDir, 'workflow-bundle.js');
  await writeFile(bundlePath, (await bundleWorkflowCode({ workflowsPath, logger: { info: () => {}, warn: () => {}, error: console.error, debug: () => {}, trace: () => {}, log: () => {} } })).code);
  const name = `rel-${randomBytes(3).toString('hex')}`;
  const instance = await createSandboxInstance({ name });
  const base = localStackConfig();
  const config = parseConfig({
    ...base,
    deployment: instance.deployment,
    staging: undefined,
    locations: base.locations.map((l) => ({ ...l, prefix: `reliability-${name}` })),
    // Seconds, not minutes: a killed attempt is noticed within the heartbeat or start-to-close timeout.
    timeouts: { heartbeat: '4s', quickCall: '10s', undoHeartbeat: '8s' },
    backup: { ...base.backup, objectsPerShard: 10, maxShards: 2 },
    // The matrix crashes the restore's steps, not its approval: its pre-confirmed restores need a target without approvals.
    restore: { ...base.restore, approvals: { production: 0, staging: 0 } },
  });
  const deps = createDependencies(config);
  const client = await connectClient(config);
  const b: Bench = { config, deps, client, taskQueue: `reliability-${name}`, bundlePath, instance, faultDir };
  const outcomes: Outcome[] = [];
  const started = Date.now();
  try {
    await seed(await loadSandboxConfig(instance.configPath), { resources: 10, auditEntries: 200, recordings: 24, recordingBytes: 6000 });
    // A clean backup and a clean restore tell which activities each runs.
    const clean = await worker(b, 'reliability-clean');
    const backupHandle = await startBackup(client, config, { taskQueue: b.taskQueue, reason: 'crash matrix: clean run' });
    const { backupId } = (await backupHandle.result()) as { backupId: string };
    const restoreHandle = await startRestore(client, config, { backupId, confirmed: true, safetySnapshot: false, reason: 'crash matrix: clean run', principal: RELIABILITY_PRINCIPAL, taskQueue: b.taskQueue });
    await restoreHandle.result();
    await clean.stop();
    const backupActivities = await activityTypes(backupHandle);
    const restoreActivities = await activityTypes(restoreHandle);
    log(`backup activities: ${backupActivities.map((a) => a.name).join(', ')}`);
    log(`restore activities: ${restoreActivities.map((a) => a.name).join(', ')}`);

    for (const activity of backupActivities) {
      if (values.only && !activity.name.includes(values.only)) continue;
      for (const point of points) {
        if (point === 'heartbeat' && !activity.heartbeats) continue;
        const o = await backupScenario(b, activity.name, point);
        log(`${o.scenario}: ${o.reached ? (o.survived ? 'survived' : 'FAILED') : 'not reached'} ${o.status} ${o.note}`);
        outcomes.push(o);
      }
    }
    for (const activity of restoreActivities) {
      if (values.only && !activity.name.includes(values.only)) continue;
      for (const point of points) {
        if (point === 'heartbeat' && !activity.heartbeats) continue;
        const o = await restoreScenario(b, backupId, activity.name, point);
        log(`${o.scenario}: ${o.reached ? (o.survived ? 'survived' : 'FAILED') : 'not reached'} ${o.status} ${o.note}`);
        outcomes.push(o);
      }
    }
  } finally {
    await client.connection.close();
    await instance.destroy().catch(() => undefined);
    await rm(faultDir, { recursive: true, force: true });
  }
  const reached = outcomes.filter((o) => o.reached);
  const summary = `${reached.length} crash runs in ${Math.round((Date.now() - started) / 1000)} s: ${reached.filter((o) => o.survived).length} survived, ${reached.filter((o) => o.dataLost).length} lost data.`;
  const body = `# Reliability: the crash matrix

\`npm run reliability\` (scripts/reliability.ts) SIGKILLs a worker once inside each activity of a backup and of a full
restore: at its ${HEARTBEAT_OCCURRENCE}nd heartbeat (activities that heartbeat), and after its work is done but before its result reaches
Temporal, so the retry meets every side effect already made (\`--points start,heartbeat,end\` adds a kill as each
activity starts). A second
worker then takes over. A run **survives** when the backup commits or undoes itself, or the restore completes or
rolls back exactly, and \`check --read-data\` then finds every committed backup whole at every location. **Data
lost** counts runs where a committed backup, a live recording or a table differs from what it must be.

Real parts: the Temporal dev server, PostgreSQL, versitygw and a sandbox VaultPAM instance of the local stack; worker
processes killed with SIGKILL by crash points that only a test's environment enables (src/runtime/fault-points.ts,
src/temporal/activity-fault-points.ts). Timeouts are configured in seconds for the run (heartbeat 4 s, quick calls
10 s).

Not in this matrix: the undo steps (discardBackup, unquiesce, swapBackDatabase, revertRecordings,
importPreviousConnectors), which run only when a later step fails; a SIGKILL inside revertRecordings is the subject
of test/integration/restore-recordings-crash.test.ts, and a failed backup's cleanup of
test/integration/backup-location-failure.test.ts.

${summary}

${table(outcomes)}
`;
  process.stdout.write(`${body}\n`);
  if (!values['no-write']) await writeFile(join(repoRoot, 'docs', 'reliability.md'), body);
  if (reached.some((o) => !o.survived || o.dataLost)) process.exitCode = 1;
}

if (isEntryPoint(import.meta.url)) {
  main().then(
    () => process.exit(),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
