// A scratch PostgreSQL instance recovered from a base backup and WAL: its own 0700 data directory and port, removed when done.
import { execFile, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { PostgresConfig } from '../config/schema';
import { findPgTool } from './binaries';
import { withClient } from './connection';
import { parseSegmentName, type WalSegment } from './wal-position';

const execFileAsync = promisify(execFile);
const SCRATCH_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

export interface ScratchPaths {
  dir: string;
  data: string;
  /** The WAL fetched for recovery (restore_command copies from here). */
  wal: string;
  log: string;
}

export function scratchPaths(root: string, scratchId: string): ScratchPaths {
  if (!SCRATCH_ID.test(scratchId)) throw new TypeError(`a scratch instance id is 1-64 lower-case letters, digits or "-", got ${JSON.stringify(scratchId)}`);
  const dir = join(root, scratchId);
  return { dir, data: join(dir, 'data'), wal: join(dir, 'wal'), log: join(dir, 'postgres.log') };
}

/** PostgreSQL refuses to run as root: then the instance belongs to the `postgres` system user. */
function runsAsRoot(): boolean {
  return process.getuid?.() === 0;
}

function postgresIds(): { uid: number; gid: number } | undefined {
  if (!runsAsRoot()) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root, the scratch instance needs a "postgres" system user to run PostgreSQL as; create one (useradd --system postgres)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function chownTree(path: string, ids: { uid: number; gid: number }): void {
  chownSync(path, ids.uid, ids.gid);
  if (statSync(path).isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), ids);
}

/** A fresh, empty instance directory (0700): whatever an earlier attempt left there is removed first. */
export async function prepareScratchDir(root: string, scratchId: string): Promise<ScratchPaths> {
  const paths = scratchPaths(root, scratchId);
  await discardScratchDir(paths);
  mkdirSync(root, { recursive: true, mode: 0o711 });
  chmodSync(root, 0o711);
  for (const dir of [paths.dir, paths.data, paths.wal]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  return paths;
}

/** Unpacks pg_basebackup's tar into the data directory. */
export async function extractBaseTar(tar: Readable, dataDir: string, onBytes?: (bytes: number) => void): Promise<void> {
  const child = spawn('tar', ['-x', '-f', '-', '-C', dataDir], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      onBytes?.(bytes);
      done(null, chunk);
    },
  });
  await pipeline(tar, counter, child.stdin);
  const code = await exited;
  if (code !== 0) throw new Error(`tar could not unpack the base backup (exit ${code}): ${stderr.trim()}`);
}

/** A TCP port nobody listens on now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function quote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Recovery settings: replay the fetched WAL up to `targetTime`, then promote. Hot standby stays off: nobody reads
 * the instance before recovery ends, and the production server's limits need not be matched.
 */
export function writeRecoverySettings(paths: ScratchPaths, targetTime: string, port: number): void {
  rmSync(join(paths.data, 'postmaster.pid'), { force: true });
  rmSync(join(paths.data, 'standby.signal'), { force: true });
  writeFileSync(join(paths.data, 'recovery.signal'), '');
  const settings = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: paths.dir,
    restore_command: restoreCommand(paths),
    // PostgreSQL's own spelling (its check of this setting refuses ISO 8601's "T" and "Z").
    recovery_target_time: targetTime.replace('T', ' ').replace(/Z$/, '+00'),
    recovery_target_action: 'promote',
    hot_standby: 'off',
    archive_mode: 'off',
    max_wal_senders: '10',
    max_replication_slots: '10',
  };
  appendFileSync(join(paths.data, 'postgresql.auto.conf'), `\n# Point-in-time recovery in a scratch instance\n${Object.entries(settings).map(([k, v]) => `${k} = ${quote(v)}`).join('\n')}\n`);
  // Replication slots of the production cluster must not pin WAL in a copy of it.
  rmSync(join(paths.data, 'pg_replslot'), { recursive: true, force: true });
  mkdirSync(join(paths.data, 'pg_replslot'), { mode: 0o700 });
}

/**
 * PostgreSQL's restore_command: a segment it asks for is named in `.wanted` (the feeder fetches up to a few ahead of
 * it), then awaited until the feeder has put it in place or has ended (`.end`); anything else (a timeline history
 * file) is copied if present. A name the feed never brings fails the command, which ends recovery there.
 */
function restoreCommand(paths: ScratchPaths): string {
  const dir = paths.wal;
  const segment = '?'.repeat(24);
  return [
    `case "%f" in ${segment}) echo "%f" > "${dir}/.wanted.tmp" && mv "${dir}/.wanted.tmp" "${dir}/.wanted";`,
    `i=0; while [ ! -e "${dir}/%f" ] && [ ! -e "${dir}/.end" ] && [ $i -lt 36000 ]; do sleep 0.05; i=$((i+1)); done;; esac;`,
    `cp "${dir}/%f" "%p"`,
  ].join(' ');
}

/** Puts a fetched segment where restore_command finds it: whole or not at all (written aside, then renamed). */
export function offerWalSegment(paths: ScratchPaths, segment: string, content: Buffer): void {
  const aside = join(paths.wal, `.${segment}.tmp`);
  writeFileSync(aside, content, { mode: 0o600 });
  const ids = postgresIds();
  if (ids) chownSync(aside, ids.uid, ids.gid);
  renameSync(aside, join(paths.wal, segment));
}

/** The segment PostgreSQL asked for last, if it has asked for one. */
export function requestedSegment(paths: ScratchPaths, segmentBytes: number): WalSegment | undefined {
  try {
    return parseSegmentName(readFileSync(join(paths.wal, '.wanted'), 'utf8').trim(), segmentBytes);
  } catch {
    return undefined;
  }
}

/** Removes the fetched segments before `asked`: PostgreSQL has copied them into its own pg_wal. */
export function dropReplayedSegments(paths: ScratchPaths, segmentBytes: number, asked: bigint): void {
  for (const name of readdirSync(paths.wal)) {
    if (!/^[0-9A-F]{24}$/.test(name)) continue;
    if (parseSegmentName(name, segmentBytes).number < asked) rmSync(join(paths.wal, name), { force: true });
  }
}

/** Tells restore_command that no further segment will come: it stops waiting and fails for a name not there. */
export function endOfWal(paths: ScratchPaths): void {
  writeFileSync(join(paths.wal, '.end'), '');
}

async function pgCtl(config: Pick<PostgresConfig, 'binDir'>, args: string[]): Promise<void> {
  const bin = findPgTool('pg_ctl', config);
  const [file, argv] = runsAsRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  await execFileAsync(file, argv, { cwd: '/', env: { ...process.env, LC_MESSAGES: 'C' } });
}

/** Starts the instance (returns at once; recovery runs on). */
export async function startScratchInstance(paths: ScratchPaths, config: Pick<PostgresConfig, 'binDir'>): Promise<void> {
  const ids = postgresIds();
  if (ids) chownTree(paths.dir, ids);
  chmodSync(paths.data, 0o700);
  try {
    // -W: do not wait for connections, which a recovering instance (hot standby off) accepts only once promoted,
    // and recovery itself waits for the WAL the caller feeds after this returns.
    await pgCtl(config, ['-D', paths.data, '-l', paths.log, '-W', 'start']);
  } catch (err) {
    throw new Error(`the scratch instance did not start (${(err as Error).message.split('\n')[0]}):\n${logTail(paths)}`);
  }
}

function logTail(paths: ScratchPaths): string {
  try {
    return readFileSync(paths.log, 'utf8').trim().split('\n').slice(-8).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Waits until recovery has ended and the instance was promoted (accepting connections, out of recovery), calling
 * `onWait` between polls. Throws with the end of the instance's log when it stops on the way.
 */
export async function waitForPromotion(paths: ScratchPaths, connection: PostgresConfig, password: string | undefined, onWait: () => void, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let startedOnce = false;
  for (;;) {
    onWait();
    if (existsSync(join(paths.data, 'postmaster.pid'))) startedOnce = true;
    else if (startedOnce) throw new Error(`the scratch instance stopped during recovery:\n${logTail(paths)}`);
    try {
      const inRecovery = await withClient({ ...connection, database: 'postgres' }, password, async (client) => (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r);
      if (!inRecovery) return;
    } catch {
      // Not accepting connections yet (still replaying, hot standby off).
    }
    if (Date.now() > deadline) throw new Error(`recovery did not end within ${Math.round(timeoutMs / 1000)} s:\n${logTail(paths)}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/** Stops the instance if it runs and removes its directory: safe to run twice, or on a directory half made. */
export async function discardScratchDir(paths: ScratchPaths, config: Pick<PostgresConfig, 'binDir'> = {}): Promise<void> {
  if (existsSync(join(paths.data, 'postmaster.pid'))) {
    await pgCtl(config, ['-D', paths.data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
  }
  rmSync(paths.dir, { recursive: true, force: true });
}
