// The database server's clock, to the microsecond: the clock a point-in-time moment (a commit time) is read on.
import type { PostgresConfig } from '../config/schema';
import { withClient } from './connection';

/** `clock_timestamp()` of the server, as ISO 8601 UTC with microseconds. */
export async function databaseClock(config: PostgresConfig, password: string | undefined): Promise<string> {
  return withClient(config, password, async (client) => {
    const { rows } = await client.query<{ t: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`);
    return rows[0]!.t;
  }, { connectionTimeoutMillis: 3_000 });
}
