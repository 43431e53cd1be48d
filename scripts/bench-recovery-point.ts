// Benchmark: the database's recovery point under point-in-time protection, under a steady write load on production.
//   npm run bench -- --recovery-point [--seconds N] [--writes-per-second N] [--partial-upload-seconds N] [--moment [--audit N]]
// Starts the compiled worker and the protection workflow of a deployment of its own (its own replication slot and
// location prefix) on the local stack's production cluster, writes at a steady rate into a database of its own, and
// samples once a second how old the newest moment recoverable from two locations is (the server's clock minus it).
// Prints the samples' median, 95th percentile and maximum; everything it made is removed at the end. With --moment it
// then makes the backup of a moment 10 s before the end (what `restore --at` restores from: the cluster recovered in a
// scratch instance, the deployment's database dumped from it, the recordings checkpoint and connector export of that
// moment) and prints how long it took, and the recovery-and-dump activity alone; the deployment is then a sandbox
// instance of its own on production's cluster, seeded with --audit audit rows (default 200000).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { databaseRecoveryPoint } from '../src/catalog/point-in-time-window';
import { parseConfig } from '../src/config/load';
import { localStackConfig, repoRoot } from '../src/config/local-stack';
import { connectionOptions } from '../src/postgres/connection';
import { startProtection } from '../src/operations/protect';
import { createDependencies } from '../src/runtime/dependencies';
import { connectClient } from '../src/temporal/connect';
import { protectWorkflowId } from '../workflows/protect-types';
import { createSandboxInstance, type SandboxInstance } from '../sandbox/instance';
import { loadSandboxConfig } from '../sandbox/sandbox-config';
import { seed } from '../sandbox/seed';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--recovery-point'),
  options: { seconds: { type: 'string', default: '120' }, 'writes-per-second': { type: 'string', default: '20' }, 'partial-upload-seconds': { type: 'string', default: '30' }, moment: { type: 'boolean', default: false }, audit: { type: 'string', default: '200000' } },
});
const seconds = Number(values.seconds);
const rate = Number(values['writes-per-second']);
const partialUploadSeconds = Number(values['partial-upload-seconds']);
for (const [name, value] of [['--seconds', seconds], ['--writes-per-second', rate], ['--partial-upload-seconds', partialUploadSeconds]] as const) {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${String(value)}`);
}

const auditRows = Number(values.audit);
if (!Number.isInteger(auditRows) || auditRows < 0) throw new Error(`--audit must be a whole number of rows, got ${values.audit}`);

const suffix = randomBytes(4).toString('hex');
const base = localStackConfig();
const slot = `vaultpam_bench_${suffix}`;
/** The protected deployment: the stack's production sandbox, or (--moment) a sandbox instance of its own on production's cluster. */
function protectedConfig(deployment: typeof base.deployment) {
  return parseConfig({
    ...base,
    deployment: { ...deployment, name: `bench-rp-${suffix}`, pointInTime: { enabled: true, slot, partialUploadSeconds, sliceSeconds: Math.max(60, seconds + 60) } },
    locations: base.locations.map((l) => ({ ...l, prefix: `bench-rp-${suffix}` })),
    temporal: { ...base.temporal, taskQueue: `bench-rp-${suffix}` },
  });
}
let config = protectedConfig(base.deployment);
let deps = createDependencies(config);
let pgConfig = config.deployment.postgres;
let password = deps.postgresPassword('production');
const database = `bench_rp_${suffix}`;
const progress = (text: string) => process.stderr.write(`bench: ${text}\n`);
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function main(): Promise<void> {
  let instance: SandboxInstance | undefined;
  if (values.moment) {
    instance = await createSandboxInstance({ name: `bench-rp-${suffix}`, cluster: 'production' });
    progress(`seeding ${auditRows} audit rows into sandbox instance ${instance.deployment.name}`);
    await seed(await loadSandboxConfig(instance.configPath), { auditEntries: auditRows, resources: 100, connectors: 20, recordings: 200, recordingBytes: 64 * 1024 });
    config = protectedConfig(instance.deployment);
    deps = createDependencies(config);
    pgConfig = config.deployment.postgres;
    password = deps.postgresPassword('production');
  }
  try {
    await measure();
  } finally {
    await instance?.destroy();
  }
}

async function measure(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vaultpam-bench-rp-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
  const admin = new pg.Client(connectionOptions(pgConfig, password, { database: 'postgres' }));
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const db = new pg.Client(connectionOptions(pgConfig, password, { database }));
  await db.connect();
  await db.query('CREATE TABLE events (id bigserial PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  const worker = spawn(process.execPath, [join(repoRoot, 'dist', 'cli.js'), '--config', configFile, 'worker'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let workerLog = '';
  worker.stderr!.on('data', (chunk: Buffer) => (workerLog = (workerLog + chunk.toString()).slice(-4000)));
  const client = await connectClient(config);
  try {
    progress(`protection of ${config.deployment.name} (slot ${slot}, a partial every ${partialUploadSeconds} s); ${rate} writes/s for ${seconds} s`);
    await startProtection(client, config);
    // The first base and the first marks, before the load is measured.
    const firstDeadline = Date.now() + 180_000;
    while (!(await databaseRecoveryPoint(deps.locations(), config.deployment.name, deps.keyRing(), new Date()).catch(() => undefined))) {
      if (Date.now() > firstDeadline) throw new Error(`no moment became recoverable from two locations within 180 s; worker: ${workerLog}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    let writes = 0;
    const ages: number[] = [];
    const end = Date.now() + seconds * 1000;
    let nextSample = Date.now();
    while (Date.now() < end) {
      await db.query('INSERT INTO events (payload) VALUES ($1)', [randomBytes(200).toString('hex')]);
      writes++;
      if (Date.now() >= nextSample) {
        nextSample += 1000;
        const [point, now] = await Promise.all([
          databaseRecoveryPoint(deps.locations(), config.deployment.name, deps.keyRing(), new Date()),
          db.query<{ t: Date }>('SELECT clock_timestamp() AS t'),
        ]);
        if (point) ages.push((now.rows[0]!.t.getTime() - Date.parse(point.to)) / 1000);
      }
      await new Promise((r) => setTimeout(r, 1000 / rate));
    }
    const sorted = [...ages].sort((a, b) => a - b);
    process.stdout.write(
      [
        `## Recovery point under a steady write load (point-in-time protection)`,
        '',
        `${writes} writes in ${seconds} s (${(writes / seconds).toFixed(1)}/s, 400-byte rows), partialUploadSeconds ${partialUploadSeconds}, ${config.locations.length} locations; ${ages.length} samples, one a second, of the server's clock minus the newest moment recoverable from two locations:`,
        '',
        `| median | 95th percentile | maximum | target |`,
        `|---:|---:|---:|---|`,
        `| ${quantile(sorted, 0.5).toFixed(1)} s | ${quantile(sorted, 0.95).toFixed(1)} s | ${sorted.at(-1)!.toFixed(1)} s | < 60 s ${sorted.at(-1)! < 60 ? 'met' : 'MISSED'} |`,
        '',
      ].join('\n'),
    );
    if (values.moment) await measureMoment(client, admin);
  } finally {
    await client.workflow.getHandle(protectWorkflowId(config.deployment.name)).terminate('benchmark over').catch(() => undefined);
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('close', r));
    await client.connection.close();
    await db.end().catch(() => undefined);
    for (let i = 0; i < 50; i++) {
      const { rows } = await admin.query<{ active_pid: number | null }>('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      if (!rows[0]) break;
      if (rows[0].active_pid) await admin.query('SELECT pg_terminate_backend($1)', [rows[0].active_pid]);
      else await admin.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
    }
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    for (const location of deps.locations()) {
      const keys: string[] = [];
      for await (const item of location.list(`${config.deployment.name}/`)) keys.push(item.key);
      for (let i = 0; i < keys.length; i += 500) await location.delete(keys.slice(i, i + 500));
    }
    rmSync(join(config.backup.workDir, 'wal-spool', `${config.deployment.name}-${slot}`), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The backup of a moment 10 s back, timed whole and by its recovery-and-dump activity. */
async function measureMoment(client: Awaited<ReturnType<typeof connectClient>>, admin: pg.Client): Promise<void> {
  const at = new Date(Date.now() - 10_000).toISOString();
  const size = Number((await admin.query<{ bytes: string }>('SELECT pg_database_size($1)::text AS bytes', [pgConfig.database])).rows[0]!.bytes);
  progress(`the backup of the moment ${at} (database ${pgConfig.database}, ${(size / 1048576).toFixed(1)} MiB)`);
  const started = Date.now();
  const workflowId = `moment-bench-${suffix}`;
  const result = await client.workflow.execute('momentBackupWorkflow', { taskQueue: config.temporal.taskQueue, workflowId, args: [{ deployment: config.deployment.name, at, reason: 'benchmark' }] });
  const totalMs = Date.now() - started;
  // The recovery-and-dump activity's own time, from the history: scheduled to completed.
  let scheduledAt: number | undefined;
  let dumpMs: number | undefined;
  for (const event of (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? []) {
    const when = Number(String(event.eventTime?.seconds ?? 0)) * 1000 + Math.floor((event.eventTime?.nanos ?? 0) / 1e6);
    if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'dumpMoment') scheduledAt = when;
    else if (event.activityTaskCompletedEventAttributes && scheduledAt !== undefined && dumpMs === undefined) dumpMs = when - scheduledAt;
  }
  const made = result as { backupId: string; segments: number; baseId: string };
  process.stdout.write(
    [
      `## The backup of a moment (what \`restore --at\` restores from)`,
      '',
      `Database ${(size / 1048576).toFixed(1)} MiB, moment 10 s before the end of the load; base ${made.baseId}, ${made.segments} WAL segment(s) fetched:`,
      '',
      `| whole workflow | recovery in a scratch instance + dump (dumpMoment) |`,
      `|---:|---:|`,
      `| ${(totalMs / 1000).toFixed(1)} s | ${dumpMs !== undefined ? `${(dumpMs / 1000).toFixed(1)} s` : '-'} |`,
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
