// The sandbox's PostgreSQL side: its connection pool and the idempotent application of schema.sql.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { repoRoot } from '../src/runtime/install-layout';
import type { SandboxConfig } from './sandbox-config';

/** Every table the sandbox owns, parents first; reset truncates them all. */
export const SANDBOX_TABLES = ['organisations', 'users', 'resources', 'safes', 'credentials', 'connectors', 'audit_log', 'sessions'] as const;

// Any constant works; it only has to be the same in every process applying the schema.
const SCHEMA_LOCK_KEY = 0x7661_756c;

export function createPool(config: Pick<SandboxConfig, 'name' | 'postgres'>, max = 10): pg.Pool {
  const pool = new pg.Pool({
    host: config.postgres.host,
    port: config.postgres.port,
    database: config.postgres.database,
    user: config.postgres.user,
    password: config.postgres.password,
    max,
    application_name: `vaultpam-sandbox-${config.name}`,
    // Short timeouts: a stop must not wait on idle connections, and the orchestrator drops or renames the
    // database right after stopping the sandbox.
    idleTimeoutMillis: 5_000,
    connectionTimeoutMillis: 5_000,
  });
  // An idle client losing its connection (the database being dropped, a restart) must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

let schemaText: Promise<string> | undefined;

export function schemaSql(): Promise<string> {
  // From the repository, not beside this module: the compiled build bundles this code into dist/.
  schemaText ??= readFile(join(repoRoot, 'sandbox', 'schema.sql'), 'utf8');
  return schemaText;
}

/** Creates what is missing; safe to run at every start and from several processes at once. */
export async function applySchema(pool: pg.Pool): Promise<void> {
  const sql = await schemaSql();
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // CREATE ... IF NOT EXISTS still races on the catalog when two processes start together.
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY]);
    await client.query(sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Runs `work` in one transaction on one client, rolling back on any error. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
