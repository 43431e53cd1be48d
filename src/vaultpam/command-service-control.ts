// ServiceControl by configured commands (e.g. `systemctl stop vaultpam-*`); argv, no shell, output tail in errors.
import { spawn } from 'node:child_process';
import { VaultpamBackupError } from '../errors/catalogue';
import type { ServiceControl } from './control-plane';

export function runCommand(argv: readonly string[], signal?: AbortSignal, timeoutMs = 120_000): Promise<void> {
  const [program, ...args] = argv;
  if (!program) return Promise.reject(new VaultpamBackupError('VPB_ERR_SERVICE_COMMAND', '(empty)', 'no program given'));
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], signal, timeout: timeoutMs });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-2000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => reject(new VaultpamBackupError('VPB_ERR_SERVICE_COMMAND', argv.join(' '), err.message)));
    child.on('close', (code, sig) => {
      if (code === 0) resolve();
      else reject(new VaultpamBackupError('VPB_ERR_SERVICE_COMMAND', argv.join(' '), `exit ${code ?? sig}: ${tail.trim().slice(-500)}`));
    });
  });
}

export function createCommandServiceControl(commands: { stopCommand: readonly string[]; startCommand: readonly string[] }): ServiceControl {
  return {
    stop: (signal) => runCommand(commands.stopCommand, signal),
    start: (signal) => runCommand(commands.startCommand, signal),
  };
}
