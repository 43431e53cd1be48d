// pg_receivewal on a physical replication slot: creating the slot, taking it over from a dead holder, and the receiver's progress.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { PostgresConfig } from '../config/schema';
import { findPgTool } from './binaries';
import { withClient, describeTarget } from './connection';
import { spawnPgTool, type ToolRun } from './tool-process';
import { parseLsn } from './wal-position';

const PID_FILE = 'receiver.pid';

function connectionArgs(config: PostgresConfig): string[] {
  return ['--no-password', '-h', config.host, '-p', String(config.port), '-U', config.user];
}

/**
 * Creates the slot unless it exists, reserving WAL at once: a slot made by `pg_receivewal --create-slot` reserves
 * nothing until a receiver first connects, so a base backup taken in between would lack the WAL before it.
 */
export async function ensureReplicationSlot(config: PostgresConfig, password: string | undefined, slot: string): Promise<void> {
  await withClient(config, password, async (client) => {
    // A slot the server invalidated (its receiver fell more than max_slot_wal_keep_size behind) streams nothing again.
    const { rows } = await client.query<{ wal_status: string | null }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (rows[0]?.wal_status === 'lost') {
      throw new Error(
        `replication slot "${slot}" ${describeTarget(config)} was invalidated by the server: the stream fell more than max_slot_wal_keep_size behind and the WAL it still needed was removed, so the moments after the newest mark cannot be recovered. Drop the slot (SELECT pg_drop_replication_slot('${slot}')) and restart protection (vaultpam-backup protect stop, then protect start): it takes a new base backup, from which moments are recoverable again`,
      );
    }
    try {
      await client.query('SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)', [slot]);
    } catch (err) {
      // Made by another run at the same moment.
      if ((err as { code?: string }).code !== '42710') throw new Error(`cannot create replication slot "${slot}" ${describeTarget(config)}: ${(err as Error).message}`);
    }
  });
}

/** Where the slot stands: the position its receiver has flushed (restart_lsn), and whether a receiver holds it. */
export async function slotPosition(client: pg.ClientBase, slot: string): Promise<{ flushedLsn: bigint | undefined; activePid: number | undefined } | undefined> {
  const { rows } = await client.query<{ restart_lsn: string | null; active_pid: number | null }>('SELECT restart_lsn::text, active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  const row = rows[0];
  if (!row) return undefined;
  return { flushedLsn: row.restart_lsn ? parseLsn(row.restart_lsn) : undefined, activePid: row.active_pid ?? undefined };
}

/** The pid recorded by an earlier receiver in `spoolDir`, if that process still runs pg_receivewal. */
function earlierReceiver(spoolDir: string): number | undefined {
  const file = join(spoolDir, PID_FILE);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  try {
    return Number.isInteger(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('pg_receivewal') ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Frees the slot from an earlier receiver (one whose worker died and left it running): kills the one recorded in
 * the spool, ends any other's replication connection, and waits until the slot is free.
 */
export async function takeOverSlot(client: pg.ClientBase, slot: string, spoolDir: string, timeoutMs = 30_000): Promise<void> {
  const orphan = earlierReceiver(spoolDir);
  if (orphan !== undefined) process.kill(orphan, 'SIGKILL');
  rmSync(join(spoolDir, PID_FILE), { force: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const position = await slotPosition(client, slot);
    if (!position?.activePid) return;
    if (Date.now() > deadline) throw new Error(`replication slot "${slot}" is still held by server process ${position.activePid} after ${timeoutMs / 1000} s`);
    await client.query('SELECT pg_terminate_backend($1)', [position.activePid]);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * Runs pg_receivewal into `spoolDir` from the slot's position. --synchronous flushes and reports each write at
 * once, so the slot's restart_lsn is what the spool holds; --no-loop makes a lost connection end the run.
 */
export function startWalReceiver(config: PostgresConfig, password: string | undefined, slot: string, spoolDir: string, signal?: AbortSignal): ToolRun {
  const run = spawnPgTool({
    tool: 'pg_receivewal',
    bin: findPgTool('pg_receivewal', config),
    args: ['-D', spoolDir, '--slot', slot, '--synchronous', '--no-loop', '--status-interval=1', ...connectionArgs(config)],
    password,
    signal,
    stdin: 'ignore',
    stdout: 'ignore',
  });
  if (run.child.pid !== undefined) writeFileSync(join(spoolDir, PID_FILE), String(run.child.pid), { mode: 0o600 });
  void run.exit.then(() => rmSync(join(spoolDir, PID_FILE), { force: true }));
  return run;
}

/**
 * A moment the WAL now covers: the server's clock, then a commit made after it (so recovery to that moment finds
 * a commit past it to stop at), then the flushed position, which holds that commit.
 */
export async function sampleWalMoment(client: pg.ClientBase): Promise<{ time: Date; lsn: bigint; timeline: number }> {
  const { rows: clock } = await client.query<{ now: Date }>('SELECT clock_timestamp() AS now');
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_current_xact_id()');
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  const { rows } = await client.query<{ lsn: string; timeline: number }>('SELECT pg_current_wal_flush_lsn()::text AS lsn, timeline_id AS timeline FROM pg_control_checkpoint()');
  return { time: clock[0]!.now, lsn: parseLsn(rows[0]!.lsn), timeline: rows[0]!.timeline };
}
