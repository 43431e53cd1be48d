// Benchmark: the database's recovery point under point-in-time protection, under a steady write load on production.
//   npm run bench -- --recovery-point [--seconds N] [--writes-per-second N] [--partial-upload-seconds N]
// Starts the compiled worker and the protection workflow of a deployment of its own (its own replication slot and
// location prefix) on the local stack's production cluster, writes at a steady rate into a database of its own, and
// samples once a second how old the newest moment recoverable from two locations is (the server's clock minus it).
// Prints the samples' median, 95th percentile and maximum; everything it made is removed at the end.
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

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--recovery-point'),
  options: { seconds: { type: 'string', default: '120' }, 'writes-per-second': { type: 'string', default: '20' }, 'partial-upload-seconds': { type: 'string', default: '30' } },
});
const seconds = Number(values.seconds);
const rate = Number(values['writes-per-second']);
const partialUploadSeconds = Number(values['partial-upload-seconds']);
for (const [name, value] of [['--seconds', seconds], ['--writes-per-second', rate], ['--partial-upload-seconds', partialUploadSeconds]] as const) {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${String(value)}`);
}

const suffix = randomBytes(4).toString('hex');
const base = localStackConfig();
const slot = `vaultpam_bench_${suffix}`;
const config = parseConfig({
  ...base,
  deployment: { ...base.deployment, name: `bench-rp-${suffix}`, pointInTime: { enabled: true, slot, partialUploadSeconds, sliceSeconds: Math.max(60, seconds + 60) } },
  locations: base.locations.map((l) => ({ ...l, prefix: `bench-rp-${suffix}` })),
  temporal: { ...base.temporal, taskQueue: `bench-rp-${suffix}` },
});
const deps = createDependencies(config);
const pgConfig = config.deployment.postgres;
const password = deps.postgresPassword('production');
const database = `bench_rp_${suffix}`;
const progress = (text: string) => process.stderr.write(`bench: ${text}\n`);
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function main(): Promise<void> {
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

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
