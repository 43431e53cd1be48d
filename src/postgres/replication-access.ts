// Whether point-in-time protection can stream from a cluster: wal_level, free slots and senders, and a physical
// replication connection actually accepted (the role's REPLICATION attribute and a pg_hba.conf replication entry).
import pg from 'pg';
import type { PostgresConfig } from '../config/schema';
import { connectClient, connectionOptions, describeTarget } from './connection';
import { scrubSecret } from './postgres-errors';

export interface ReplicationAccess {
  ok: boolean;
  /** What is wrong and what to change, when not ok. */
  problems: string[];
  facts: { walLevel: string; maxReplicationSlots: number; maxWalSenders: number; slotsInUse: number; systemId?: string; timeline?: number };
}

/** Checks what `pg_receivewal` and `pg_basebackup` need, without creating a slot or streaming anything. */
export async function checkReplicationAccess(config: PostgresConfig, password: string | undefined): Promise<ReplicationAccess> {
  const problems: string[] = [];
  const settings = await (async () => {
    const client = await connectClient(config, password, { applicationName: 'vaultpam-backup preflight' });
    try {
      const { rows } = await client.query<{ name: string; setting: string }>(
        "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders')",
      );
      const slots = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM pg_replication_slots');
      const get = (name: string) => rows.find((r) => r.name === name)?.setting ?? '';
      return { walLevel: get('wal_level'), maxReplicationSlots: Number(get('max_replication_slots')), maxWalSenders: Number(get('max_wal_senders')), slotsInUse: Number(slots.rows[0]?.n ?? 0) };
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  if (settings.walLevel !== 'replica' && settings.walLevel !== 'logical') problems.push(`wal_level is ${settings.walLevel}: set wal_level = replica in postgresql.conf and restart PostgreSQL`);
  if (settings.maxWalSenders < 2) problems.push(`max_wal_senders is ${settings.maxWalSenders}: the stream and a base backup need 2 at once; raise it and restart PostgreSQL`);
  if (settings.maxReplicationSlots < 1) problems.push('max_replication_slots is 0: raise it to at least 1 and restart PostgreSQL');

  // A physical replication connection, as pg_receivewal opens it: IDENTIFY_SYSTEM answers only on a walsender.
  const facts: ReplicationAccess['facts'] = { ...settings };
  const walsender = new pg.Client({ ...connectionOptions(config, password, { applicationName: 'vaultpam-backup preflight' }), replication: true } as pg.ClientConfig);
  walsender.on('error', () => {
    // Reported by connect() or the query below.
  });
  try {
    await walsender.connect();
    const { rows } = await walsender.query<{ systemid: string; timeline: string }>('IDENTIFY_SYSTEM');
    facts.systemId = rows[0]?.systemid;
    facts.timeline = Number(rows[0]?.timeline);
  } catch (err) {
    const message = scrubSecret(err instanceof Error ? err.message : String(err), password);
    const fix = /pg_hba\.conf/.test(message)
      ? `add "host replication ${config.user} <worker address>/32 scram-sha-256" to pg_hba.conf and reload PostgreSQL`
      : /superuser or replication role|permission denied/i.test(message)
        ? `give the role the replication attribute: ALTER ROLE ${config.user} REPLICATION`
        : 'check that the cluster accepts replication connections from the worker';
    problems.push(`a replication connection to ${describeTarget(config)} was refused (${message}): ${fix}`);
  } finally {
    await walsender.end().catch(() => undefined);
  }
  return { ok: problems.length === 0, problems, facts };
}
