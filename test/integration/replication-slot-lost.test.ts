// A replication slot the server invalidated is named, with its fix, before a stream tries it: shown on a throwaway
// cluster of its own whose max_slot_wal_keep_size is tiny (the shared production cluster's slots are left alone).
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConfig } from '../../src/config/schema';
import { findPgTool } from '../../src/postgres/binaries';
import { freePort } from '../../src/postgres/scratch-instance';
import { ensureReplicationSlot } from '../../src/postgres/wal-receiver';
import { until } from '../support/until';

const asRoot = process.getuid?.() === 0;
/** Runs a PostgreSQL program as the postgres user when the tests run as root (PostgreSQL refuses to run as root). */
function asPostgres(file: string, args: string[]): void {
  if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', file, ...args], { cwd: '/', stdio: 'pipe' });
  else execFileSync(file, args, { stdio: 'pipe' });
}

function postgresIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))!;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

describe('a replication slot the server invalidated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpb-slot-lost-'));
  const data = join(dir, 'data');
  const binDir = dirname(findPgTool('pg_ctl'));
  let config: PostgresConfig;
  let client: pg.Client;

  beforeAll(async () => {
    if (asRoot) {
      const ids = postgresIds();
      chownSync(dir, ids.uid, ids.gid);
    }
    const port = await freePort();
    asPostgres(join(binDir, 'initdb'), ['-D', data, '-U', 'vaultpam', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
    const settings = ['-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'wal_level=replica', '-c', 'max_slot_wal_keep_size=1MB', '-c', 'max_wal_size=64MB', '-c', 'fsync=off'];
    asPostgres(join(binDir, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-o', settings.join(' '), '-w', 'start']);
    config = { host: '127.0.0.1', port, database: 'postgres', user: 'vaultpam' } as PostgresConfig;
    client = new pg.Client({ host: '127.0.0.1', port, database: 'postgres', user: 'vaultpam' });
    await client.connect();
  }, 60_000);

  afterAll(async () => {
    await client?.end().catch(() => undefined);
    try {
      asPostgres(join(binDir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // Not started.
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('is refused by name with how to start again, while a healthy slot is taken as it is', async () => {
    await client.query(`SELECT pg_create_physical_replication_slot('behind', true)`);
    await ensureReplicationSlot(config, undefined, 'behind');

    // Nobody streams from the slot while WAL moves on by several segments past the 1 MB it may hold back.
    await client.query('CREATE TABLE ballast (b text)');
    await until(
      async () => {
        await client.query(`INSERT INTO ballast SELECT repeat('x', 1000) FROM generate_series(1, 2000)`);
        await client.query('SELECT pg_switch_wal()');
        await client.query('CHECKPOINT');
        const { rows } = await client.query<{ wal_status: string }>(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'behind'`);
        return rows[0]?.wal_status === 'lost' ? true : undefined;
      },
      'the server invalidating the slot',
      30_000,
    );

    const refusal = ensureReplicationSlot(config, undefined, 'behind');
    await expect(refusal).rejects.toThrow(/replication slot "behind" .* was invalidated by the server/);
    await expect(refusal).rejects.toThrow(/pg_drop_replication_slot\('behind'\).*protect stop, then protect start/);
    // A slot that does not exist yet is made.
    await ensureReplicationSlot(config, undefined, 'fresh');
    const { rows } = await client.query<{ wal_status: string }>(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'fresh'`);
    expect(rows[0]?.wal_status).toBe('reserved');
  }, 60_000);
});
