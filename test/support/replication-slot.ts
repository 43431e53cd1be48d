// The end of a test that streamed WAL: its slot dropped (it would keep WAL for a stream that no longer runs) and its spool removed.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { Config } from '../../src/config/schema';

/** Ends the slot's walsender if one still runs, then drops the slot; gives up quietly after 10 s. */
export async function dropReplicationSlot(admin: Pick<pg.ClientBase, 'query'>, slot: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const { rows } = await admin.query<{ active_pid: number | null }>('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (!rows[0]) return;
    if (rows[0].active_pid) await admin.query('SELECT pg_terminate_backend($1)', [rows[0].active_pid]);
    else {
      await admin.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The stream's local spool (backup.workDir/wal-spool/<deployment>-<slot>). */
export function removeWalSpool(config: Config, deployment: string, slot: string): void {
  rmSync(join(config.backup.workDir, 'wal-spool', `${deployment}-${slot}`), { recursive: true, force: true });
}
