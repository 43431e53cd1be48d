// Opening node-postgres connections from the deployment's configuration and an already resolved password.
import pg from 'pg';
import type { PostgresConfig } from '../config/schema';
import { PgConnectError, scrubSecret } from './postgres-errors';

export interface ConnectionOverrides {
  /** Connect to this database instead of `config.database` (admin statements run from a maintenance database). */
  database?: string;
  /** Shown in pg_stat_activity, so an operator can tell the orchestrator's sessions apart. @default 'vaultpam-backup' */
  applicationName?: string;
  /** @default 10000 */
  connectionTimeoutMillis?: number;
}

/** Options for `new pg.Client(...)` / `new pg.Pool(...)`. No connection string: nothing to leak into a log. */
export function connectionOptions(config: PostgresConfig, password: string | undefined, overrides: ConnectionOverrides = {}): pg.ClientConfig {
  return {
    host: config.host,
    port: config.port,
    user: config.user,
    database: overrides.database ?? config.database,
    // undefined lets libpq-style fallbacks (PGPASSWORD, trust, peer) decide, as pg_dump would.
    password,
    application_name: overrides.applicationName ?? 'vaultpam-backup',
    connectionTimeoutMillis: overrides.connectionTimeoutMillis ?? 10_000,
  };
}

/** Human-readable target for messages: where, as whom, never with what password. */
export function describeTarget(config: PostgresConfig, database = config.database): string {
  return `at ${config.host}:${config.port} (database "${database}", user "${config.user}")`;
}

export interface ServerVersion {
  /** `server_version_num`, e.g. 150018. */
  versionNum: number;
  /** `server_version`, e.g. "15.18 (Debian 15.18-0+deb12u1)". */
  text: string;
}

export async function serverVersion(client: pg.ClientBase): Promise<ServerVersion> {
  const { rows } = await client.query<{ num: string; text: string }>(
    "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text",
  );
  const row = rows[0];
  if (!row) throw new Error('the server returned no version');
  return { versionNum: Number(row.num), text: row.text };
}

/**
 * A connected client. An 'error' listener is attached at once: a server-side termination of an idle client
 * otherwise surfaces as an uncaught exception that takes the whole worker down.
 */
export async function connectClient(config: PostgresConfig, password: string | undefined, overrides: ConnectionOverrides = {}): Promise<pg.Client> {
  const client = new pg.Client(connectionOptions(config, password, overrides));
  client.on('error', () => {
    // Reported to whoever awaits the next query on this client.
  });
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    const detail = scrubSecret(err instanceof Error ? err.message : String(err), password);
    throw new PgConnectError(describeTarget(config, overrides.database), detail);
  }
  return client;
}

/** Runs `fn` with a connected client and always closes it. */
export async function withClient<T>(
  config: PostgresConfig,
  password: string | undefined,
  fn: (client: pg.Client) => Promise<T>,
  overrides: ConnectionOverrides = {},
): Promise<T> {
  const client = await connectClient(config, password, overrides);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
