// `vaultpam-backup protect start|stop|status`: the point-in-time protection workflow of a deployment.
import { Command, Option } from 'commander';
import type { Client } from '@temporalio/client';
import type { TargetName } from '../config/load';
import type { Config } from '../config/schema';

type WithClient = <T>(cfg: Config, fn: (client: Client) => Promise<T>) => Promise<T>;

export function protectCommand(config: () => Config, withClient: WithClient): Command {
  const protect = new Command('protect').description('point-in-time protection: base backups and WAL streamed to every location (needs a running worker)');
  const target = () => new Option('-t, --target <target>', 'the deployment to act on').choices(['production', 'staging']).default('production');
  protect
    .command('start')
    .addOption(target())
    .action(async (opts: { target: TargetName }) => {
      const { startProtection } = await import('../operations/protect');
      const cfg = config();
      const id = await withClient(cfg, (client) => startProtection(client, cfg, opts.target));
      process.stdout.write(`protection started: workflow ${id}\n`);
    });
  protect
    .command('stop')
    .addOption(target())
    .action(async (opts: { target: TargetName }) => {
      const { stopProtection } = await import('../operations/protect');
      const cfg = config();
      const id = await withClient(cfg, (client) => stopProtection(client, cfg, opts.target));
      process.stdout.write(`protection of workflow ${id} stops after its current slice\n`);
    });
  protect
    .command('status')
    .addOption(target())
    .option('--json')
    .action(async (opts: { target: TargetName; json?: boolean }) => {
      const { protectionStatus } = await import('../operations/protect');
      const { createDependencies } = await import('../runtime/dependencies');
      const cfg = config();
      const deps = createDependencies(cfg);
      const status = await withClient(cfg, (client) => protectionStatus(client, cfg, deps.locations(), deps.keyRing(), opts.target));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        return;
      }
      const window = status.window.window ? `${status.window.window.from} to ${status.window.window.to}` : `none (${status.window.reason})`;
      const lines = [
        `${status.workflowId}: ${status.running ? 'running' : 'not running'}`,
        `  newest mark: ${status.state?.mark ? `${status.state.mark.time} (LSN ${status.state.mark.lsn})` : '-'}`,
        ...(status.retrying ? [`  RETRYING ${status.retrying.activity} (attempt ${status.retrying.attempt}): ${status.retrying.error}`] : []),
        ...(status.state?.checkpointProblem ? [`  last checkpoint problem (${status.state.checkpointProblem.at}): ${status.state.checkpointProblem.message}`] : []),
        `  restorable window: ${window}`,
        ...(status.window.gapCount ? [`  missing WAL segments: ${status.window.gaps.join(', ')}`] : []),
        ...status.window.locations.map((l) => `  ${l.location}: ${l.window ? `${l.window.from} to ${l.window.to}` : `none (${l.reason})`}${l.gapCount ? `; missing ${l.gaps.join(', ')}` : ''}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  return protect;
}
