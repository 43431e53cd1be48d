// The vaultpam-backup command line: stack, worker, api, preflight, demo.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, type TargetName } from '../config/load';
import { repoRoot } from '../config/local-stack';
import type { Config } from '../config/schema';
import { startApi } from '../api/server';
import { VaultpamBackupError } from '../errors/catalogue';
import { runPreflight } from '../operations/preflight';
import { connectClient } from '../temporal/connect';
import { createWorker } from '../temporal/worker';
import { formatPreflight, printJson } from './output';

const program = new Command('vaultpam-backup')
  .description('Back up and restore VaultPAM deployments with durable Temporal workflows')
  .option('-c, --config <path>', 'JSON configuration file (default: $VAULTPAM_BACKUP_CONFIG, else the local stack)')
  .showHelpAfterError();

function config(): Config {
  return loadConfig({ path: program.opts<{ config?: string }>().config });
}

const targetOption = () =>
  new Option('-t, --target <target>', 'the deployment to act on').choices(['production', 'staging']).default('production');

function stackScript(args: string[]): number {
  const result = spawnSync('bash', [join(repoRoot, 'scripts', 'stack.sh'), ...args], { stdio: 'inherit' });
  return result.status ?? 1;
}

program
  .command('stack')
  .description('provision and run the local stack: PostgreSQL, Temporal + Web UI, S3 server, sandbox VaultPAM')
  .argument('<action>', 'up | down | status', (value) => {
    if (!['up', 'down', 'status'].includes(value)) throw new InvalidArgumentError('use up, down or status');
    return value;
  })
  .action((action: string) => {
    process.exitCode = stackScript([action]);
  });

program
  .command('worker')
  .description('run a worker on the task queue until interrupted (run as many as you like)')
  .action(async () => {
    const cfg = config();
    const { worker, connection } = await createWorker({ config: cfg });
    process.stderr.write(`worker polling ${cfg.temporal.taskQueue} at ${cfg.temporal.address}\n`);
    await worker.run();
    await connection.close();
  });

program
  .command('api')
  .description('serve the HTTP API until interrupted')
  .action(async () => {
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
  .option('--json', 'print the report as JSON')
  .action(async (opts: { target: TargetName; json?: boolean }) => {
    const cfg = config();
    const client = await connectClient(cfg);
    const { workflowId, report } = await runPreflight(client, cfg, opts.target);
    if (opts.json) printJson({ workflowId, ...report });
    else process.stdout.write(`${formatPreflight(report)}\n  workflow ${workflowId}: ${cfg.temporal.uiUrl}/namespaces/${cfg.temporal.namespace}/workflows/${workflowId}\n`);
    process.exitCode = report.ok ? 0 : 1;
    await client.connection.close();
  });

program
  .command('demo')
  .description('the main job on the embedded default: provision the local stack and sandbox, run a worker, run preflight, print the report')
  .option('--json', 'print the report as JSON')
  .action(async (opts: { json?: boolean }) => {
    if (stackScript(['up']) !== 0) throw new VaultpamBackupError('VPB_ERR_STACK', 'scripts/stack.sh up failed (see the lines above)');
    const seeded = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'sandbox', 'seed.ts'), '--config', join(repoRoot, '.stack', 'sandbox', 'production.json'), '--if-empty'], {
      stdio: 'inherit',
      cwd: repoRoot,
    });
    if (seeded.status !== 0) throw new VaultpamBackupError('VPB_ERR_STACK', 'seeding the sandbox VaultPAM failed (see the lines above)');
    const cfg = config();
    const { worker, connection } = await createWorker({ config: cfg });
    const client = await connectClient(cfg);
    const { workflowId, report } = await worker.runUntil(runPreflight(client, cfg, 'production'));
    if (opts.json) printJson({ workflowId, ...report });
    else {
      process.stdout.write(`${formatPreflight(report)}\n\n`);
      process.stdout.write(`Temporal Web UI: ${cfg.temporal.uiUrl}/namespaces/${cfg.temporal.namespace}/workflows/${workflowId}\n`);
    }
    process.exitCode = report.ok ? 0 : 1;
    await client.connection.close();
    await connection.close();
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`vaultpam-backup: ${message}\n`);
  process.exitCode = err instanceof VaultpamBackupError && err.code.startsWith('VPB_ERR_CONFIG') ? 2 : 1;
}
