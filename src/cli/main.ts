// The vaultpam-backup command line: stack, worker, api, tokens, preflight, backup, backups, check, audit, schedule, demo.
//
// Only light modules are imported here; each action imports what it needs (the Temporal SDK, minio, pg, fastify
// take a second or more to load), so `--help` and a mistyped option answer at once.
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { TargetName } from '../config/load';
import { localStackDir, repoRoot } from '../config/local-stack';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import type { DrillReport } from '../operations/restore';
import type { RestoreReport } from '../../workflows/restore-types';
import { protectCommand } from './protect-command';
import { tokensCommand } from './tokens-command';
import { workflowUrl } from './workflow-url';
import type { Principal } from '../auth/principal';

// The configuration loader (zod) is loaded before any action runs, so config() stays synchronous.
let loadConfig: typeof import('../config/load').loadConfig;

/** Commands that serve until interrupted. */
const LONG_RUNNING_COMMANDS = new Set(['worker', 'api', 'demo']);

const program = new Command('vaultpam-backup')
  .description('Back up and restore VaultPAM deployments with durable Temporal workflows')
  .option('-c, --config <path>', 'JSON configuration file (default: $VAULTPAM_BACKUP_CONFIG, else the local stack)')
  .option('--api <url>', 'send backup, verify, check, restore, confirm, drill and rotate-key through this API (default: api.url; without either, they drive Temporal directly)')
  .option('--token-file <path>', 'the file holding your API token (default: $VAULTPAM_API_TOKEN)')
  .option('--progress-interval <seconds>', 'where the output is no terminal (CI, pipes): seconds between two progress lines', parseProgressInterval, 5)
  .showHelpAfterError()
  // `restore --backup` and `restore confirm --backup` are different options: each belongs where it is written.
  .enablePositionalOptions()
  .hook('preAction', async (_program, command) => {
    ({ loadConfig } = await import('../config/load'));
    // zod compiles each schema to a function on its first parse: worth it in a worker or the API, which parse for
    // days, not in a command that parses its configuration and a few manifests once (tens of ms at start).
    if (!LONG_RUNNING_COMMANDS.has(command.name())) (await import('zod')).z.config({ jitless: true });
  });

function parseProgressInterval(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0.1) throw new InvalidArgumentError('give a number of seconds, at least 0.1 (e.g. 30)');
  return seconds;
}

function config(): Config {
  return loadConfig({ path: program.opts<{ config?: string }>().config });
}

program.addCommand(tokensCommand(config));

const targetOption = () => new Option('-t, --target <target>', 'the deployment to act on').choices(['production', 'staging']).default('production');

/** Runs scripts/stack.sh (node:child_process loaded here: `--help` has no use for it). */
async function stackScript(args: string[]): Promise<number> {
  const { spawnSync } = await import('node:child_process');
  const result = spawnSync('bash', [join(repoRoot, 'scripts', 'stack.sh'), ...args], { stdio: 'inherit' });
  return result.status ?? 1;
}

async function withClient<T>(cfg: Config, fn: (client: Client) => Promise<T>): Promise<T> {
  const { connectClient } = await import('../temporal/connect');
  const client = await connectClient(cfg);
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

program.addCommand(protectCommand(config, withClient));

/**
 * The API to send a state-changing command through (--api, else api.url), with the caller's token; undefined: the
 * command drives Temporal directly, as on a developer's machine.
 */
async function viaApi(cfg: Config) {
  const { apiTargetOf } = await import('./api-client');
  return apiTargetOf(cfg, program.opts<{ api?: string; tokenFile?: string }>());
}

const progressIntervalMs = () => program.opts<{ progressInterval: number }>().progressInterval * 1000;

/** Shows the workflow's progress while `work` runs (nothing with --json), and clears it before the result prints. */
async function withProgress<T>(client: Client, workflowId: string, label: string, json: boolean | undefined, work: () => Promise<T>): Promise<T> {
  const { followProgress } = await import('./follow-progress');
  const following = await followProgress(client, workflowId, { label, json: json ?? false, plainIntervalMs: progressIntervalMs() });
  try {
    return await work();
  } finally {
    await following.stop();
  }
}

program
  .command('stack')
  .description('provision and run the local stack: PostgreSQL, Temporal + Web UI, S3 server, sandbox VaultPAM')
  .argument('<action>', 'up | down | status', (value) => {
    if (!['up', 'down', 'status'].includes(value)) throw new InvalidArgumentError('use up, down or status');
    return value;
  })
  .action(async (action: string) => {
    process.exitCode = await stackScript([action]);
  });

program
  .command('worker')
  .description('run a worker on the task queue until interrupted (run as many as you like, on as many machines)')
  .action(async () => {
    // V8 favours memory over speed from here on (smaller heap growth steps, less kept between collections): about
    // 40 MiB less at rest, for a process whose heavy work (crypto, hashing, sockets) runs in native code.
    (await import('node:v8')).setFlagsFromString('--optimize-for-size');
    const { createActivityMetrics, serveMetrics } = await import('../metrics/activity-metrics');
    const { createWorker } = await import('../temporal/worker');
    const { Runtime } = await import('@temporalio/worker');
    const { WorkerLogger } = await import('../temporal/worker-logger');
    Runtime.install({ logger: new WorkerLogger('INFO') });
    const cfg = config();
    const metrics = cfg.worker.metricsPort !== undefined ? createActivityMetrics() : undefined;
    const { worker, connection } = await createWorker({ config: cfg, ...(metrics ? { metrics } : {}) });
    const served = metrics ? await serveMetrics(metrics.registry, cfg.worker.metricsHost, cfg.worker.metricsPort!) : undefined;
    process.stderr.write(`worker polling ${cfg.temporal.taskQueue} at ${cfg.temporal.address}${served ? `; metrics at ${served.url}` : ''}\n`);
    const stop = () => worker.shutdown();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await worker.run();
    await served?.close();
    await connection.close();
  });

program
  .command('api')
  .description('serve the HTTP API until interrupted')
  .action(async () => {
    const { startApi } = await import('../api/server');
    const api = await startApi(config());
    process.stderr.write(`API listening on ${api.url}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await api.close();
  });

program
  .command('preflight')
  .description('check PostgreSQL, the recordings bucket, the control plane and the backup locations (needs a running worker)')
  .addOption(targetOption())
  .option('--allow-no-backup', 'pass the recovery-point check when no backup exists yet (a new deployment, before its first backup)')
  .option('--json', 'print the report as JSON')
  .action(async (opts: { target: TargetName; allowNoBackup?: boolean; json?: boolean }) => {
    const { runPreflight } = await import('../operations/preflight');
    const { formatPreflight, printJson } = await import('./output');
    const cfg = config();
    const { workflowId, runId, report } = await withClient(cfg, (client) => runPreflight(client, cfg, opts.target, cfg.temporal.taskQueue, { allowNoBackup: opts.allowNoBackup ?? false }));
    if (opts.json) printJson({ workflowId, runId, ...report });
    else process.stdout.write(`${formatPreflight(report)}\n  workflow ${workflowId}: ${workflowUrl(cfg, workflowId)}\n`);
    process.exitCode = report.ok ? 0 : 1;
  });

program
  .command('status')
  .description('the point-in-time recovery point: the newest moment the database is recoverable to and the newest recordings checkpoint, each from two locations, and the newest connector export')
  .option('--json', 'print as JSON')
  .action(async (opts: { json?: boolean }) => {
    const { CONNECTOR_EXPORT_KIND } = await import('../catalog/checkpoint-manifest');
    const { newestPointHeld, recordingsRecoveryPoint } = await import('../catalog/point-in-time-catalog');
    const { createDependencies } = await import('../runtime/dependencies');
    const { printJson } = await import('./output');
    const cfg = config();
    const deps = createDependencies(cfg);
    const deployment = cfg.deployment.name;
    const recordings = await recordingsRecoveryPoint(deps.locations(), deployment, deps.keyRing(), deps.now());
    const connectors = await newestPointHeld(deps.locations(), CONNECTOR_EXPORT_KIND, deployment, deps.keyRing(), 1);
    const { databaseRecoveryPoint } = await import('../catalog/point-in-time-window');
    const database = await databaseRecoveryPoint(deps.locations(), deployment, deps.keyRing(), deps.now());
    const status = {
      deployment,
      database: database ?? null,
      recordings: recordings ?? null,
      connectors: connectors ? { exportId: connectors.id, exportedAt: connectors.manifest.exportedAt, locations: connectors.locations } : null,
    };
    if (opts.json) return printJson(status);
    process.stdout.write(
      `${deployment}\n  database:   ${
        database ? `recoverable to ${database.to} from ${database.locations.join(' and ')}: recovery point ${Math.round(database.ageSeconds)} s` : 'no moment is recoverable from two locations (is protection running? vaultpam-backup protect status)'
      }\n  recordings: ${
        recordings ? `checkpoint ${recordings.checkpointId} covers ${recordings.coveredAt}: recovery point ${Math.round(recordings.ageSeconds)} s` : 'no checkpoint is held in two locations'
      }\n  connectors: ${connectors ? `export ${connectors.id} of ${connectors.manifest.exportedAt} (${connectors.locations.join(', ')})` : 'no export stored'}\n`,
    );
  });

const backup = program
  .command('backup')
  .description('back up the deployment: quiesce, dump, sync recordings, export connectors, verify, replicate (needs a running worker)')
  .option('--wait', 'wait for the backup to finish, showing progress')
  .option('--deep', 'deep verify: restore the dump into a scratch database and compare row counts')
  .option('--reason <text>', 'why this backup is taken (kept in the manifest)')
  .option('--json', 'print the result as JSON')
  .action(async (opts: { wait?: boolean; deep?: boolean; reason?: string; json?: boolean }) => {
    const { requireWorker, whileWorkerPolls } = await import('../operations/worker-presence');
    const { backupResult, startBackup } = await import('../operations/backup');
    const { formatBackupResult, printJson } = await import('./output');
    const cfg = config();
    const api = await viaApi(cfg);
    if (api) return (await import('./api-commands')).backupViaApi(api, cfg, opts);
    await withClient(cfg, async (client) => {
      const taskQueue = cfg.temporal.taskQueue;
      // Waiting for a backup no worker will run would wait forever: refuse before starting it.
      if (opts.wait) await requireWorker(client, taskQueue);
      const handle = await startBackup(client, cfg, { reason: opts.reason ?? 'on demand', requestedBy: `cli:${userInfo().username}`, deep: opts.deep ?? false });
      const ids = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
      if (!opts.wait) {
        if (opts.json) printJson(ids);
        else process.stdout.write(`backup started: workflow ${handle.workflowId}\n  follow it: vaultpam-backup backup status   or ${workflowUrl(cfg, handle.workflowId)}\n`);
        return;
      }
      const watch = { workflowId: handle.workflowId };
      const result = await withProgress(client, handle.workflowId, 'backup', opts.json, () => whileWorkerPolls(client, taskQueue, backupResult(handle), watch));
      if (opts.json) printJson({ ...ids, ...result });
      else process.stdout.write(`${formatBackupResult(result)}\n  workflow: ${workflowUrl(cfg, handle.workflowId)}\n`);
    });
  });

backup
  .command('status')
  .description('progress of the running (or last) backup of the deployment')
  .option('--json', 'print as JSON')
  .action(async (opts: { json?: boolean }) => {
    const { backupWorkflowId } = await import('../operations/backup');
    const { formatProgress, readBackupProgress } = await import('../operations/progress');
    const { printJson } = await import('./output');
    const cfg = config();
    await withClient(cfg, async (client) => {
      const progress = await readBackupProgress(client, client.workflow.getHandle(backupWorkflowId(cfg.deployment.name)));
      if (opts.json) printJson(progress);
      else process.stdout.write(`${progress.workflowStatus}: ${formatProgress(progress)}${progress.error ? `\n  error: ${progress.error}` : ''}\n`);
    });
  });

const backups = program.command('backups').description('the catalog: committed backups in the locations');

backups
  .command('list')
  .description('every committed backup, newest first, with the locations holding it (reads the locations directly)')
  .option('--json', 'print as JSON')
  .action(async (opts: { json?: boolean }) => {
    const { listBackups } = await import('../catalog/catalog');
    const { createDependencies } = await import('../runtime/dependencies');
    const { formatBackupList, printJson } = await import('./output');
    const cfg = config();
    const entries = await listBackups(createDependencies(cfg).locations(), cfg.deployment.name);
    if (opts.json) printJson(entries.map((e) => ({ backupId: e.backupId, locations: e.locations, problems: e.problems, manifest: e.manifest })));
    else process.stdout.write(`${formatBackupList(entries)}\n`);
  });

backups
  .command('verify')
  .description('verify a committed backup at every location: checksums, pg_restore --list, blobs (needs a running worker)')
  .argument('<backupId>')
  .option('--deep', 'also restore the dump into a scratch database and compare row counts with the manifest')
  .option('--json', 'print the report as JSON')
  .action(async (backupId: string, opts: { deep?: boolean; json?: boolean }) => {
    const { runVerify } = await import('../operations/verify');
    const { formatVerify, printJson } = await import('./output');
    const cfg = config();
    const api = await viaApi(cfg);
    if (api) return (await import('./api-commands')).verifyViaApi(api, backupId, opts);
    const report = await withClient(cfg, async (client) => {
      const { followProgress } = await import('./follow-progress');
      let following: Awaited<ReturnType<typeof followProgress>> | undefined;
      try {
        return await runVerify(client, cfg, backupId, opts.deep ?? false, cfg.temporal.taskQueue, {
          requestedBy: localPrincipal().id,
          onStarted: async (workflowId) => {
            following = await followProgress(client, workflowId, { label: `verify ${backupId}`, json: opts.json ?? false, plainIntervalMs: progressIntervalMs() });
          },
        });
      } finally {
        await following?.stop();
      }
    });
    if (opts.json) printJson(report);
    else process.stdout.write(`${formatVerify(report)}\n`);
    process.exitCode = report.ok ? 0 : 1;
  });

program
  .command('rotate-key')
  .description('rewrap every backup\'s and restore journal\'s data key under encryption.activeKeyId, as a workflow under the deployment lock (keep the old key in encryption.keys until this has run; a worker must run)')
  .option('--json', 'print as JSON')
  .action(async (opts: { json?: boolean }) => {
    const { runKeyRotation } = await import('../operations/rotate-keys');
    const { printJson } = await import('./output');
    const cfg = config();
    const api = await viaApi(cfg);
    if (api) return (await import('./api-commands')).rotateKeysViaApi(api, opts);
    const result = await withClient(cfg, (client) => runKeyRotation(client, cfg, cfg.temporal.taskQueue, localPrincipal().id));
    if (opts.json) printJson(result);
    else {
      process.stdout.write(`master key ${result.activeKeyId}: ${result.rewrappedCount} backup(s) rewrapped, ${result.alreadyCurrent} already under it, ${result.journalsRewrapped} restore journal(s), ${result.checkpointsRewrapped ?? 0} recordings checkpoint(s) and ${result.connectorExportsRewrapped ?? 0} connector export(s) rewrapped\n`);
      for (const r of result.rewrapped) process.stdout.write(`  ${r.backupId}  from ${r.from}  in ${r.locations.join(', ')}\n`);
    }
  });

program
  .command('audit')
  .description('list the audit trail and check it: every MAC, no gap, every link, the same entry in every location, every manifest\'s anchor (reads the locations directly)')
  .option('--location <name>', 'list and check one location only')
  .option('--since <time>', 'list entries from this time (ISO time, or 30m / 24h / 7d back from now); every entry is still checked')
  .option('--json', 'print as JSON')
  .action(async (opts: { location?: string; since?: string; json?: boolean }) => {
    const { parseSince, runAuditCheck } = await import('../operations/audit');
    const { formatAuditReport } = await import('./audit-output');
    const { printJson } = await import('./output');
    const report = await runAuditCheck(config(), { ...(opts.location ? { location: opts.location } : {}), ...(opts.since ? { since: parseSince(opts.since) } : {}) });
    if (opts.json) printJson(report);
    else process.stdout.write(`${formatAuditReport(report)}\n`);
    process.exitCode = report.ok ? 0 : 1;
  });

const schedule = program.command('schedule').description('the daily backup (or the repository check) as a Temporal Schedule');
schedule
  .command('create')
  .option('--cron <expr>', 'when to run (5-field cron, UTC)', '0 2 * * *')
  .option('--deep', 'deep verify in every scheduled backup')
  .option('--paused', 'create it paused')
  .option('--drill', 'schedule the restore drill into staging instead (use a quarterly cron, e.g. "0 3 1 1,4,7,10 *")')
  .option('--check', 'schedule the repository check instead (e.g. --cron "0 4 * * *")')
  .option('--read-data-subset-of <m>', 'with --check: each run reads the next slice n of m of the blobs, so m runs read them all', (v) => Number(v))
  .option('--repair', 'with --check: each run repairs what it finds from a good copy')
  .action(async (opts: { cron: string; deep?: boolean; paused?: boolean; drill?: boolean; check?: boolean; readDataSubsetOf?: number; repair?: boolean }) => {
    const { createBackupSchedule, createCheckSchedule, createDrillSchedule } = await import('../operations/schedule');
    const cfg = config();
    if (!opts.check && (opts.readDataSubsetOf !== undefined || opts.repair)) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', '--read-data-subset-of and --repair go with --check');
    const id = await withClient(cfg, (client) =>
      opts.check
        ? createCheckSchedule(client, cfg, { cron: opts.cron, paused: opts.paused ?? false, repair: opts.repair ?? false, ...(opts.readDataSubsetOf !== undefined ? { readDataSubsetOf: opts.readDataSubsetOf } : {}) })
        : opts.drill
          ? createDrillSchedule(client, cfg, { cron: opts.cron })
          : createBackupSchedule(client, cfg, { cron: opts.cron, deep: opts.deep ?? false, paused: opts.paused ?? false }),
    );
    process.stdout.write(`schedule ${id} created (${opts.cron}); see it in ${cfg.temporal.uiUrl}/namespaces/${cfg.temporal.namespace}/schedules\n`);
  });
schedule
  .command('show')
  .option('--check', 'the check schedule')
  .option('--json')
  .action(async (opts: { json?: boolean; check?: boolean }) => {
    const { checkScheduleId, describeBackupSchedule } = await import('../operations/schedule');
    const { printJson } = await import('./output');
    const cfg = config();
    const d = await withClient(cfg, (client) => describeBackupSchedule(client, cfg, opts.check ? checkScheduleId(cfg.deployment.name) : undefined));
    if (opts.json) printJson(d);
    else process.stdout.write(`${d.scheduleId}${d.paused ? ' (paused)' : ''}\n  next: ${d.nextRuns.join(', ') || '-'}\n  recent: ${d.recentRuns.map((r) => `${r.at} ${r.workflowId}`).join('\n          ') || '-'}\n`);
  });
schedule
  .command('delete')
  .option('--check', 'the check schedule')
  .action(async (opts: { check?: boolean }) => {
    const { deleteBackupSchedule, deleteCheckSchedule } = await import('../operations/schedule');
    const cfg = config();
    await withClient(cfg, (client) => (opts.check ? deleteCheckSchedule(client, cfg) : deleteBackupSchedule(client, cfg)));
    process.stdout.write('schedule deleted\n');
  });

const check = program
  .command('check')
  .description('check the repository: every manifest (backups, recordings checkpoints, connector exports) and its MAC, artifacts, blobs and orphans in every location (needs a running worker)')
  .option('--read-data', 'also read every referenced blob whole and compare it with the recording it holds')
  .option('--read-data-subset <n/m>', 'read only slice n of m of the blobs (stable slices: m runs with n = 1..m read them all)')
  .option('--repair', 'copy what is damaged or missing from a location (or the live recordings bucket) where it verifies')
  .option('--wait', 'wait for the report (exit 1 when problems remain)')
  .option('--json', 'print as JSON')
  .action(async (opts: { readData?: boolean; readDataSubset?: string; repair?: boolean; wait?: boolean; json?: boolean }) => {
    const { checkResult, parseReadDataSubset, startCheck } = await import('../operations/check');
    const { formatCheckReport, printJson } = await import('./output');
    if (opts.readData && opts.readDataSubset) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', 'give --read-data or --read-data-subset n/m, not both');
    const readData = opts.readData ? ('all' as const) : opts.readDataSubset ? parseReadDataSubset(opts.readDataSubset) : undefined;
    const cfg = config();
    const api = await viaApi(cfg);
    if (api) return (await import('./api-commands')).checkViaApi(api, cfg, opts);
    await withClient(cfg, async (client) => {
      const handle = await startCheck(client, cfg, { ...(readData ? { readData } : {}), repair: opts.repair ?? false, requestedBy: `cli:${userInfo().username}` });
      if (!opts.wait) {
        if (opts.json) printJson({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId });
        else process.stdout.write(`check started: workflow ${handle.workflowId}\n  its report: vaultpam-backup check status   or ${workflowUrl(cfg, handle.workflowId)}\n`);
        return;
      }
      const report = await withProgress(client, handle.workflowId, 'check', opts.json, () => checkResult(client, handle.workflowId));
      if (opts.json) printJson(report);
      else process.stdout.write(`${formatCheckReport(report)}\n  workflow: ${workflowUrl(cfg, handle.workflowId)}\n`);
      process.exitCode = report.ok ? 0 : 1;
    });
  });

check
  .command('status')
  .description('the running (or last) check of the deployment, with its report once finished')
  .option('--json', 'print as JSON')
  .action(async (opts: { json?: boolean }) => {
    const { checkStatus, checkWorkflowId } = await import('../operations/check');
    const { formatCheckReport, printJson } = await import('./output');
    const cfg = config();
    const status = await withClient(cfg, (client) => checkStatus(client, checkWorkflowId(cfg.deployment.name)));
    if (opts.json) printJson(status);
    else process.stdout.write(status.report ? `${formatCheckReport(status.report)}\n` : `${status.workflowId}: ${status.status}${status.error ? `: ${status.error}` : ''}\n`);
    process.exitCode = status.report && !status.report.ok ? 1 : 0;
  });

const restore = program
  .command('restore')
  .enablePositionalOptions()
  .description('restore a backup: verified first, confirmed against a loss report, rolled back if any step fails (needs a running worker)')
  .option('--backup <id>', 'the backup to restore')
  .option('--at <time>', 'the deployment as of this moment (ISO 8601): from point-in-time protection when enabled, else the newest backup taken at or before it')
  .option('--scope <scope>', '"full", or "resource:<id>" to bring back one resource while the deployment keeps running', 'full')
  .addOption(targetOption())
  .option('--reason <text>', 'why (kept in the workflow)')
  .option('--yes', 'pre-confirm: skip the confirmation step (drills, scripts)')
  .option('--accept-unrecoverable <digest|count>', 'with --yes: go ahead without the recordings found in no location (the digest from the report, or at most this many)')
  .option('--wait', 'wait for the end (with --yes), printing the report')
  .option('--json', 'print as JSON')
  .action(async (opts: { backup?: string; at?: string; scope: string; target: TargetName; reason?: string; yes?: boolean; acceptUnrecoverable?: string; wait?: boolean; json?: boolean }) => {
    const { requireWorker, whileWorkerPolls } = await import('../operations/worker-presence');
    const { parseScope, parseUnrecoverableAcceptance, restoreReport, startRestore } = await import('../operations/restore');
    const { formatRestoreReport, printJson } = await import('./output');
    const cfg = config();
    const api = await viaApi(cfg);
    if (api) return (await import('./api-commands')).restoreViaApi(api, cfg, opts);
    await withClient(cfg, async (client) => {
      const taskQueue = cfg.temporal.taskQueue;
      // Without --yes the command waits for the loss report, with --wait for the end: both need a worker.
      if (!opts.yes || opts.wait) await requireWorker(client, taskQueue);
      const handle = await startRestore(client, cfg, {
        ...(opts.backup ? { backupId: opts.backup } : {}),
        ...(opts.at ? { at: opts.at } : {}),
        scope: parseScope(opts.scope),
        target: opts.target,
        reason: opts.reason ?? 'on demand',
        principal: localPrincipal(),
        confirmed: opts.yes ?? false,
        ...(opts.acceptUnrecoverable !== undefined ? { acceptUnrecoverable: parseUnrecoverableAcceptance(opts.acceptUnrecoverable)! } : {}),
      });
      const id = handle.workflowId;
      const ids = { workflowId: id, runId: handle.firstExecutionRunId };
      if (!opts.yes) {
        // Show what the restore brings back and what it loses, then say exactly how to confirm.
        const report = await whileWorkerPolls(client, taskQueue, waitForReport(client, id), { workflowId: id });
        const confirmCommand = `vaultpam-backup restore confirm ${id} --backup ${report.backup?.backupId ?? '<id>'}`;
        if (opts.json) printJson({ ...ids, backupId: report.backup?.backupId, confirmCommand, ...report });
        else process.stdout.write(`${formatRestoreReport(report)}\n\nTo go ahead: ${confirmCommand}\n`);
        return;
      }
      if (!opts.wait) {
        if (opts.json) printJson(ids);
        else process.stdout.write(`restore started: workflow ${id}\n  follow it: vaultpam-backup restore report ${id}   or ${workflowUrl(cfg, id)}\n`);
        return;
      }
      const report = await withProgress(client, id, 'restore', opts.json, () =>
        whileWorkerPolls(
          client,
          taskQueue,
          handle.result().then(
            (r) => r as RestoreReport,
            () => restoreReport(client, id),
          ),
          { workflowId: id },
        ),
      );
      if (opts.json) printJson({ ...ids, backupId: report.backup?.backupId, ...report });
      else process.stdout.write(`${formatRestoreReport(report)}\n  workflow: ${workflowUrl(cfg, id)}\n`);
      process.exitCode = report.status === 'completed' ? 0 : 1;
    });
  });

restore
  .command('confirm')
  .description('confirm a restore awaiting confirmation, after reading its loss report')
  .argument('<workflowId>')
  .requiredOption('--backup <id>', 'the backup id the restore will restore (echoed back as proof you read the report)')
  .option('--accept-unrecoverable <digest>', 'go ahead without the recordings found in no location: the digest the report gives for their list')
  .option('--break-glass <reason>', 'approve alone, standing for every required approval (only when the worker enables restore.breakGlass); reported, counted and announced')
  .option('--wait', 'wait for the end, printing the report')
  .option('--json', 'print as JSON (the report the confirmation answered, or with --wait the final one)')
  .action(async (workflowId: string, opts: { backup: string; acceptUnrecoverable?: string; breakGlass?: string; wait?: boolean; json?: boolean }) => {
    const { confirmRestore, parseUnrecoverableAcceptance, restoreReport } = await import('../operations/restore');
    const { requireWorker, whileWorkerPolls } = await import('../operations/worker-presence');
    const { formatRestoreReport, printJson } = await import('./output');
    const cfg = config();
    const api = await viaApi(cfg);
    if (api) return (await import('./api-commands')).confirmViaApi(api, workflowId, opts);
    await withClient(cfg, async (client) => {
      const taskQueue = cfg.temporal.taskQueue;
      const current = await restoreReport(client, workflowId);
      if (!current.lossReportDigest) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `restore ${workflowId} has no loss report yet (status ${current.status}); wait a moment and try again`);
      const acceptUnrecoverable = parseUnrecoverableAcceptance(opts.acceptUnrecoverable);
      // The confirmation is a Workflow Update: a worker must run the workflow to accept it.
      await requireWorker(client, taskQueue);
      if (!opts.json) process.stdout.write(`${formatRestoreReport(current)}\n\n`);
      const confirmation = await whileWorkerPolls(
        client,
        taskQueue,
        confirmRestore(client, cfg, workflowId, {
          backupId: opts.backup,
          lossReportDigest: current.lossReportDigest,
          principal: localPrincipal(),
          ...(opts.breakGlass !== undefined ? { breakGlass: { reason: opts.breakGlass } } : {}),
          ...(acceptUnrecoverable !== undefined ? { acceptUnrecoverable } : {}),
          selfApprovalHint: `This command signs as ${localPrincipal().id}, who requested it: approve as another principal through the API with an approver's token (POST /v1/restores/${workflowId}/confirm {"backupId": "${opts.backup}", "lossReportDigest": "${current.lossReportDigest}"})`,
        }),
        { workflowId },
      );
      if (!opts.json) {
        const approvedBy = (confirmation.approvals ?? []).map((a) => a.principal).join(', ') || 'no one';
        process.stdout.write(
          confirmation.status === 'awaiting-confirmation'
            ? `approved by ${approvedBy}; ${(confirmation.approvalsRequired ?? 0) - (confirmation.approvals?.length ?? 0)} more approval(s) from other principals are needed before the restore of ${opts.backup} goes ahead\n`
            : `confirmed${confirmation.breakGlass ? ' by BREAK-GLASS' : ''} (approved by ${approvedBy}); the restore of ${opts.backup} goes ahead\n`,
        );
      }
      const handle = client.workflow.getHandle(workflowId);
      const runId = (await handle.describe()).runId;
      if (opts.wait) {
        const report = await withProgress(client, workflowId, 'restore', opts.json, () =>
          whileWorkerPolls(
            client,
            taskQueue,
            handle.result().then(
              (r) => r as RestoreReport,
              () => restoreReport(client, workflowId),
            ),
            { workflowId },
          ),
        );
        if (opts.json) printJson({ workflowId, runId, backupId: opts.backup, ...report });
        else process.stdout.write(`${formatRestoreReport(report)}\n`);
        process.exitCode = report.status === 'completed' ? 0 : 1;
      } else if (opts.json) {
        printJson({ workflowId, runId, backupId: opts.backup, ...confirmation });
      }
    });
  });

restore
  .command('report')
  .description('the report of a restore: loss report, step, verification, RTO, rollback')
  .argument('<workflowId>')
  .option('--json', 'print as JSON')
  .action(async (workflowId: string, opts: { json?: boolean }) => {
    const { restoreReport } = await import('../operations/restore');
    const { formatRestoreReport, printJson } = await import('./output');
    const cfg = config();
    const report = await withClient(cfg, (client) => restoreReport(client, workflowId));
    if (opts.json) printJson({ workflowId, backupId: report.backup?.backupId, ...report });
    else process.stdout.write(`${formatRestoreReport(report)}\n`);
  });

restore
  .command('drill')
  .description('restore the newest backup into the staging deployment, verify and smoke-test it, report the RTO')
  .option('--json', 'print as JSON')
  .action(async (opts: { json?: boolean }) => {
    const { requireWorker, whileWorkerPolls } = await import('../operations/worker-presence');
    const { startDrill } = await import('../operations/restore');
    const { printJson } = await import('./output');
    const cfg = config();
    const api = await viaApi(cfg);
    if (api) return (await import('./api-commands')).drillViaApi(api, cfg, opts);
    await withClient(cfg, async (client) => {
      await requireWorker(client, cfg.temporal.taskQueue);
      const handle = await startDrill(client, cfg);
      const report = await withProgress(client, handle.workflowId, 'drill', opts.json, () =>
        whileWorkerPolls(client, cfg.temporal.taskQueue, handle.result() as Promise<DrillReport>, { workflowId: handle.workflowId }),
      );
      if (opts.json) printJson({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, ...report });
      else process.stdout.write(`Restore drill passed: backup ${report.backupId} restored into staging, RTO ${report.rtoMs ?? '?'} ms, smoke-test session ${report.smokeTest?.sessionId}\n`);
    });
  });

restore
  .command('cleanup')
  .description('drop the database a completed full restore set aside (kept until you are satisfied with the restore)')
  .argument('<workflowId>')
  .requiredOption('--yes', 'yes: drop it (it cannot be brought back except from a backup)')
  .action(async (workflowId: string) => {
    const { restoreReport } = await import('../operations/restore');
    const { dropDatabase } = await import('../postgres');
    const { createDependencies } = await import('../runtime/dependencies');
    const cfg = config();
    const report = await withClient(cfg, (client) => restoreReport(client, workflowId));
    if (report.status !== 'completed' || !report.previousDatabase) {
      throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `restore ${workflowId} is ${report.status} and set no database aside; nothing to clean up`);
    }
    const deps = createDependencies(cfg);
    const target = deps.deployment(report.target);
    await dropDatabase(target.postgres, deps.postgresPassword(report.target), report.previousDatabase, { ifExists: true, force: true });
    process.stdout.write(`dropped ${report.previousDatabase}\n`);
  });

/** Who the command line signs as in its direct (development) mode: the operating-system user of this process. */
function localPrincipal(): Principal {
  return { id: `local:${userInfo().username}`, roles: ['restorer', 'approver'], via: 'development' };
}

/** Waits until a new restore has its loss report (or has ended). */
async function waitForReport(client: Client, workflowId: string): Promise<RestoreReport> {
  const { restoreReport } = await import('../operations/restore');
  for (;;) {
    const report = await restoreReport(client, workflowId).catch(() => undefined);
    if (report && (report.lossReportDigest || report.status !== 'running')) return report;
    await new Promise((r) => setTimeout(r, 500));
  }
}

program
  .command('demo')
  .description('the main job on the embedded default: provision the local stack and sandbox, run a worker, preflight, back up, verify')
  .action(async () => {
    const { listBackups } = await import('../catalog/catalog');
    if ((await stackScript(['up'])) !== 0) throw new VaultpamBackupError('VPB_ERR_STACK', 'scripts/stack.sh up failed (see the lines above)');
    const { loadSandboxConfig } = await import('../../sandbox/sandbox-config');
    const { seed } = await import('../../sandbox/seed');
    const { Runtime } = await import('@temporalio/worker');
    const { backupResult, startBackup } = await import('../operations/backup');
    const { runPreflight } = await import('../operations/preflight');
    const { runVerify } = await import('../operations/verify');
    const { createDependencies } = await import('../runtime/dependencies');
    const { createWorker } = await import('../temporal/worker');
    const { formatBackupResult, formatPreflight, formatVerify } = await import('./output');
    const cfg = config();
    const deps = createDependencies(cfg);
    if ((await deps.controlPlane('production').stats()).resources === 0) {
      process.stdout.write('seeding the sandbox VaultPAM (50 resources, 5000 audit entries, 200 recordings)...\n');
      await seed(await loadSandboxConfig(join(localStackDir(), 'sandbox', 'production.json')), { resources: 50, auditEntries: 5000, recordings: 200, recordingBytes: 64 * 1024 });
    }
    const { WorkerLogger } = await import('../temporal/worker-logger');
    Runtime.install({ logger: new WorkerLogger('WARN') });
    const { worker, connection } = await createWorker({ config: cfg, deps });
    await withClient(cfg, (client) =>
      worker.runUntil(async () => {
        // The demo's first run has no backup yet: that is what it is about to make.
        const firstRun = (await listBackups(deps.locations(), cfg.deployment.name)).length === 0;
        const { workflowId, report } = await runPreflight(client, cfg, 'production', cfg.temporal.taskQueue, { allowNoBackup: firstRun });
        process.stdout.write(`${formatPreflight(report)}\n  ${workflowUrl(cfg, workflowId)}\n\n`);
        if (!report.ok) throw new VaultpamBackupError('VPB_ERR_STACK', 'preflight failed; fix what it names and run again');
        const handle = await startBackup(client, cfg, { reason: 'demo', requestedBy: `cli:${userInfo().username}` });
        const result = await withProgress(client, handle.workflowId, 'backup', false, () => backupResult(handle));
        process.stdout.write(`${formatBackupResult(result)}\n  ${workflowUrl(cfg, handle.workflowId)}\n\n`);
        const verify = await runVerify(client, cfg, result.backupId, false);
        process.stdout.write(`${formatVerify(verify)}\n\n`);
        process.stdout.write(`Temporal Web UI: ${cfg.temporal.uiUrl}/namespaces/${cfg.temporal.namespace}/workflows\n`);
      }),
    );
    await connection.close();
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // A failed workflow's own failure says which step failed and why; its wrapper only says "Workflow execution failed".
  // By name, not instanceof: a refused configuration must not wait for the Temporal client to load.
  const message = err instanceof Error && err.name === 'WorkflowFailedError' && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`vaultpam-backup: ${message}\n`);
  process.exitCode = err instanceof VaultpamBackupError && err.code.startsWith('VPB_ERR_CONFIG') ? 2 : 1;
}
