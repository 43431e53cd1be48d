// pg_basebackup of a whole cluster as one tar stream on stdout (-Ft -X none: the WAL comes from the stream).
import type { Readable } from 'node:stream';
import type { PostgresConfig } from '../config/schema';
import { findPgTool } from './binaries';
import { describeExit, spawnPgTool } from './tool-process';

export interface BaseBackupRun {
  /** The tar of the cluster's files; consume it whole. */
  tar: Readable;
  /** Settles once pg_basebackup has exited, or rejects with why it failed. */
  done: Promise<void>;
}

/**
 * Starts pg_basebackup over the replication protocol as `config.user`; the password travels in the environment.
 * Written to stdout, pg_basebackup reports no WAL range: the caller brackets it with the server's positions (the
 * WAL position before it starts is at or before the base's checkpoint; the one after it ends is at or past its end).
 */
export function startBaseBackup(config: PostgresConfig, password: string | undefined, signal?: AbortSignal): BaseBackupRun {
  const args = ['-D', '-', '-Ft', '-X', 'none', '--checkpoint=fast', '--no-password', '-h', config.host, '-p', String(config.port), '-U', config.user];
  const run = spawnPgTool({ tool: 'pg_basebackup', bin: findPgTool('pg_basebackup', config), args, password, signal, stdin: 'ignore', stdout: 'pipe' });
  const done = run.exit.then((exit) => {
    if (exit.code !== 0) throw new Error(`${describeExit('pg_basebackup', exit)}: ${exit.stderrTail || '(no message)'}`);
  });
  return { tar: run.child.stdout!, done };
}
