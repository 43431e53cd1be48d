// A consistent point in the database: an exported snapshot that pg_dump --snapshot and our row counts both read.
//
// Why: the backup pauses writes (maintenance mode) only until the snapshot is exported, a few milliseconds, not
// for the length of the dump. The dump then reads exactly the snapshot's state however many writes follow, and
// the manifest's row counts come from the same transaction, so they match the dump by construction.
//
// Temporal: an exported snapshot lives only as long as the transaction that exported it, on one connection of
// one process. So the snapshot holder and the pg_dump that imports it belong to the SAME activity, in the same
// worker: open the snapshot, signal the quiesce step's end (e.g. leave maintenance mode from inside the activity
// or return the snapshot point through a heartbeat), run `dumpDatabase({ snapshotId })`, then close. A retry
// of that activity opens a new snapshot; a snapshot id never crosses an activity boundary or enters history.
import type pg from 'pg';
import type { PostgresConfig } from '../config/schema';
import { connectClient, serverVersion, type ConnectionOverrides } from './connection';
import { countRows, largeTables, type TableProgress, type TableSize } from './table-stats';

export interface Snapshot {
  /** The id to pass as `pg_dump --snapshot=<id>`; valid until `close()`. */
  readonly snapshotId: string;
  /** `server_version_num` of the server, for `checkDumpCompatibility`. */
  readonly serverVersionNum: number;
  /** When the snapshot was taken, by the server's clock (`now()` of the exporting transaction). */
  readonly takenAt: Date;
  /** The same instant to the microsecond, as ISO 8601 UTC text (a Date keeps only milliseconds). */
  readonly takenAtText: string;
  /** Milliseconds from the connect to the exported snapshot: the part of the backup that needs writes paused. */
  readonly exportMs: number;
  /** Row counts as of the snapshot, counted inside the exporting transaction. */
  rowCounts(tables: readonly string[], onProgress?: TableProgress): Promise<Record<string, number>>;
  /** Tables above `minBytes`, largest first (see largeTables). */
  largeTables(minBytes: number): Promise<TableSize[]>;
  /**
   * The snapshot's visibility as `xmin:xmax:xip` (txid_current_snapshot). Two snapshots with the same text see
   * exactly the same committed rows: no transaction id was assigned or ended between them, so nothing was written.
   */
  readonly visibility: string;
  /** Milliseconds the snapshot has been held open so far (or was, once closed). */
  heldMs(): number;
  /** Ends the transaction and the connection; safe to call twice. After it, the id can no longer be imported. */
  close(): Promise<void>;
}

/**
 * Opens a connection, starts a REPEATABLE READ READ ONLY transaction and exports its snapshot. The transaction
 * is held open until `close()`: a read-only transaction blocks no writer, it only holds back vacuum's horizon
 * for the length of the dump (the dump's own transaction would do the same).
 */
export async function openSnapshot(config: PostgresConfig, password: string | undefined, overrides: ConnectionOverrides = {}): Promise<Snapshot> {
  const started = performance.now();
  const client: pg.Client = await connectClient(config, password, { applicationName: 'vaultpam-backup snapshot', ...overrides });
  try {
    // A server-wide idle_in_transaction_session_timeout would otherwise kill the holder mid-dump.
    await client.query('SET idle_in_transaction_session_timeout = 0');
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows } = await client.query<{ id: string; taken_at: Date; taken_at_text: string; visibility: string }>(
      `SELECT pg_export_snapshot() AS id, now() AS taken_at, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS taken_at_text,
              txid_current_snapshot()::text AS visibility`,
    );
    const row = rows[0];
    if (!row) throw new Error('pg_export_snapshot() returned no row');
    const exported = performance.now();
    const { versionNum } = await serverVersion(client);

    let closedAt: number | undefined;
    let closing: Promise<void> | undefined;
    return {
      snapshotId: row.id,
      serverVersionNum: versionNum,
      takenAt: row.taken_at,
      takenAtText: row.taken_at_text,
      exportMs: exported - started,
      visibility: row.visibility,
      largeTables: (minBytes) => largeTables(client, minBytes),
      rowCounts: (tables, onProgress) => countRows(client, tables, onProgress),
      heldMs: () => (closedAt ?? performance.now()) - exported,
      close: () => {
        closing ??= (async () => {
          try {
            await client.query('COMMIT');
          } catch {
            // The connection may already be gone; the transaction ends with it either way.
          } finally {
            closedAt = performance.now();
            await client.end().catch(() => undefined);
          }
        })();
        return closing;
      },
    };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

/** Runs `fn` with an open snapshot and closes it afterwards, whatever `fn` does. */
export async function withSnapshot<T>(
  config: PostgresConfig,
  password: string | undefined,
  fn: (snapshot: Snapshot) => Promise<T>,
  overrides: ConnectionOverrides = {},
): Promise<T> {
  const snapshot = await openSnapshot(config, password, overrides);
  try {
    return await fn(snapshot);
  } finally {
    await snapshot.close();
  }
}
