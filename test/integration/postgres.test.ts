// The PostgreSQL layer against the real local server: snapshot-consistent dump, list, restore, database swaps.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConfig } from '../../src/config/schema';
import {
  DatabaseStateError,
  DumpFailedError,
  InvalidDatabaseNameError,
  InvalidDumpError,
  PgToolAbortedError,
  RestoreFailedError,
  connectClient,
  createDatabase,
  databaseExists,
  dropDatabase,
  dumpDatabase,
  findPgTool,
  listDump,
  openSnapshot,
  pgToolVersion,
  renameDatabase,
  restoreDump,
  tableChecksums,
  tableRowCounts,
  withClient,
} from '../../src/postgres';
import { localStackDir } from '../../src/config/local-stack';

const stackDir = localStackDir();
const password = readFileSync(join(stackDir, 'secrets', 'pg-password'), 'utf8').trim();
const port = Number(process.env.VAULTPAM_PG_PORT ?? 55432);
const runId = randomBytes(4).toString('hex');
const name = (suffix: string): string => `pgtest_${runId}_${suffix}`;
const TABLES = ['public.organisations', 'public.audit_log', 'vault.credentials'];

function configFor(database: string): PostgresConfig {
  return { host: '127.0.0.1', port, database, user: 'vaultpam' };
}

/** Reads a whole dump into memory: the test databases are small, and each test replays the same bytes. */
async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const created = new Set<string>();
async function scratchDatabase(suffix: string): Promise<string> {
  const db = name(suffix);
  created.add(db);
  await createDatabase(configFor(db), password, db);
  return db;
}

describe('postgres layer on the real server', () => {
  const source = name('src');
  const config = configFor(source);
  let scratch: string;

  beforeAll(async () => {
    created.add(source);
    await createDatabase(config, password, source);
    await withClient(config, password, async (client) => {
      await client.query(`
        CREATE SCHEMA vault;
        CREATE TABLE organisations (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
        CREATE TABLE audit_log (id bigserial PRIMARY KEY, org_id int REFERENCES organisations, at timestamptz NOT NULL DEFAULT now(), event jsonb);
        CREATE TABLE vault.credentials (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), org_id int REFERENCES organisations, secret bytea);
        INSERT INTO organisations (name) SELECT 'org-' || g FROM generate_series(1, 20) g;
        INSERT INTO audit_log (org_id, event) SELECT 1 + g % 20, jsonb_build_object('n', g, 'kind', 'login') FROM generate_series(1, 5000) g;
        INSERT INTO vault.credentials (org_id, secret) SELECT 1 + g % 20, sha256(g::text::bytea) FROM generate_series(1, 300) g;
      `);
    });
    scratch = mkdtempSync(join(tmpdir(), 'pgtest-'));
  });

  afterAll(async () => {
    for (const db of created) await dropDatabase(configFor(db), password, db, { ifExists: true, force: true });
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('finds pg_dump and pg_restore and reads their versions', async () => {
    const version = await pgToolVersion(findPgTool('pg_dump', {}));
    expect(version.major).toBeGreaterThanOrEqual(15);
    expect((await pgToolVersion(findPgTool('pg_restore', {}))).major).toBe(version.major);
  });

  it('dumps exactly the snapshot while writes continue, and restores it into a new database', async () => {
    const atSnapshot = await tableChecksums(config, password, source, TABLES);
    const snapshot = await openSnapshot(config, password);
    let dump: Buffer;
    let counts: Record<string, number>;
    try {
      counts = await snapshot.rowCounts(TABLES);
      expect(counts).toEqual({ 'public.organisations': 20, 'public.audit_log': 5000, 'vault.credentials': 300 });

      // Writes after the consistent point, from another connection: inserts, updates and deletes.
      await withClient(config, password, async (client) => {
        await client.query(`INSERT INTO organisations (name) VALUES ('late-org')`);
        await client.query(`INSERT INTO audit_log (org_id, event) SELECT 2, '{"late": true}' FROM generate_series(1, 250)`);
        await client.query(`UPDATE audit_log SET event = '{"changed": true}' WHERE id <= 100`);
        await client.query(`DELETE FROM vault.credentials WHERE org_id = 3`);
      });

      let progressed = 0;
      const { stream, done } = dumpDatabase({
        config,
        password,
        snapshotId: snapshot.snapshotId,
        serverVersionNum: snapshot.serverVersionNum,
        onProgress: ({ bytes }) => (progressed = bytes),
      });
      dump = await collect(stream);
      const result = await done;
      expect(result.exitCode).toBe(0);
      expect(result.bytes).toBe(dump.length);
      expect(progressed).toBe(dump.length);
      // The counts stay those of the snapshot for as long as it is open, whatever was written since.
      expect(await snapshot.rowCounts(TABLES)).toEqual(counts);
      expect(snapshot.exportMs).toBeLessThan(5000);
    } finally {
      await snapshot.close();
    }
    await snapshot.close(); // twice is harmless

    const live = await tableRowCounts(config, password, source, TABLES);
    expect(live['public.audit_log']).toBe(5250);
    expect(live['public.organisations']).toBe(21);

    const listing = await listDump(Readable.from([dump]));
    expect(listing.tables).toEqual(expect.arrayContaining(TABLES));
    expect(listing.tablesWithData).toEqual(expect.arrayContaining(TABLES));
    expect(listing.entries).toBeGreaterThan(TABLES.length * 2);
    expect(listing.database).toBe(source);
    expect(listing.bytes).toBe(dump.length);

    const target = await scratchDatabase('restored');
    // Odd-sized chunks: pg_restore must not depend on how the decrypting stage slices the archive.
    const pieces = [];
    for (let i = 0; i < dump.length; i += 7919) pieces.push(dump.subarray(i, i + 7919));
    const restored = await restoreDump({ config, password, database: target, stream: Readable.from(pieces) });
    expect(restored.bytes).toBe(dump.length);
    expect(await tableRowCounts(config, password, target, TABLES)).toEqual(counts);
    expect(await tableChecksums(config, password, target, TABLES)).toEqual(atSnapshot);
    expect(await tableChecksums(config, password, source, TABLES)).not.toEqual(atSnapshot);

    // The same archive from a file restores in parallel.
    const file = join(scratch, 'db.dump');
    writeFileSync(file, dump);
    const parallel = await scratchDatabase('parallel');
    await restoreDump({ config, password, database: parallel, file, jobs: 2 });
    expect(await tableChecksums(config, password, parallel, TABLES)).toEqual(atSnapshot);

    // A stream cannot be restored in parallel, and a database with tables is not a restore target.
    await expect(restoreDump({ config, password, database: parallel, stream: Readable.from([dump]), jobs: 2 })).rejects.toThrow(/seekable/);
    await expect(restoreDump({ config, password, database: parallel, file })).rejects.toMatchObject({ code: 'VPB_ERR_PG_DATABASE_NOT_EMPTY' });
    expect(await tableChecksums(config, password, parallel, TABLES)).toEqual(atSnapshot);
  });

  it('rejects what is not a custom-format archive with a clear message', async () => {
    const garbage = listDump(Readable.from([randomBytes(256 * 1024)]));
    await expect(garbage).rejects.toBeInstanceOf(InvalidDumpError);
    await expect(garbage).rejects.toThrow(/the dump is not a valid pg_dump custom-format archive/);
    await expect(listDump(Readable.from([]))).rejects.toThrow(/not a valid pg_dump custom-format archive/);

    // The stream's own failure (e.g. a tampered chunk found by decryption) is the error, not the truncated archive.
    const { stream, done } = dumpDatabase({ config, password });
    const dump = await collect(stream);
    await done;
    const failing = new Readable({ read() {} });
    failing.push(dump.subarray(0, 1000));
    setTimeout(() => failing.destroy(new Error('artifact chunk 3 failed authentication')), 50);
    await expect(listDump(failing)).rejects.toThrow(/chunk 3 failed authentication/);

    const target = await scratchDatabase('garbage');
    await expect(restoreDump({ config, password, database: target, stream: Readable.from([randomBytes(4096)]) })).rejects.toBeInstanceOf(RestoreFailedError);
  });

  it('creates, renames, drops and checks databases, refusing bad names without changing anything', async () => {
    const a = name('a');
    const b = name('b');
    created.add(a).add(b);
    expect(await databaseExists(config, password, a)).toBe(false);
    expect(await createDatabase(config, password, a)).toEqual({ created: true });
    expect(await createDatabase(config, password, a, { ifNotExists: true })).toEqual({ created: false });
    await expect(createDatabase(config, password, a)).rejects.toMatchObject({ code: 'VPB_ERR_PG_DATABASE_EXISTS' });

    // A session still connected to the database being renamed is disconnected first.
    const holder = await connectClient(configFor(a), password);
    await renameDatabase(config, password, a, b);
    expect(await databaseExists(config, password, a)).toBe(false);
    expect(await databaseExists(config, password, b)).toBe(true);
    await expect(holder.query('SELECT 1')).rejects.toThrow();
    await holder.end().catch(() => undefined);

    await expect(renameDatabase(config, password, a, b)).rejects.toMatchObject({ code: 'VPB_ERR_PG_DATABASE_MISSING' });
    await expect(renameDatabase(config, password, b, source)).rejects.toMatchObject({ code: 'VPB_ERR_PG_DATABASE_EXISTS' });

    for (const bad of ['bad-name', 'x'.repeat(64), 'a"; DROP DATABASE postgres; --', '', 'naïve']) {
      await expect(createDatabase(config, password, bad)).rejects.toBeInstanceOf(InvalidDatabaseNameError);
      await expect(dropDatabase(config, password, bad)).rejects.toThrow(/use 1 to 63 letters, digits and underscores/);
      await expect(renameDatabase(config, password, b, bad)).rejects.toBeInstanceOf(InvalidDatabaseNameError);
      await expect(databaseExists(config, password, bad)).rejects.toBeInstanceOf(InvalidDatabaseNameError);
    }
    expect(await databaseExists(config, password, b)).toBe(true);
    expect(await databaseExists(config, password, 'x'.repeat(63))).toBe(false);

    // Without force a connected session blocks the drop; with force it does not.
    const busy = await connectClient(configFor(b), password);
    busy.on('error', () => undefined);
    await expect(dropDatabase(config, password, b)).rejects.toBeInstanceOf(DatabaseStateError);
    expect(await databaseExists(config, password, b)).toBe(true);
    expect(await dropDatabase(config, password, b, { force: true })).toEqual({ dropped: true });
    await busy.end().catch(() => undefined);
    expect(await databaseExists(config, password, b)).toBe(false);
    expect(await dropDatabase(config, password, b, { ifExists: true })).toEqual({ dropped: false });
    await expect(dropDatabase(config, password, b)).rejects.toMatchObject({ code: 'VPB_ERR_PG_DATABASE_MISSING' });
  });

  it('fails a dump with a wrong password without ever showing the password', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const { stream, done } = dumpDatabase({ config, password: wrong });
    const streamed = collect(stream);
    await expect(done).rejects.toBeInstanceOf(DumpFailedError);
    const err = (await done.catch((e: unknown) => e)) as DumpFailedError;
    expect(err.message).toMatch(/password authentication failed/);
    expect(err.message).not.toContain(wrong);
    expect(String(err.stack)).not.toContain(wrong);
    expect(JSON.stringify(err)).not.toContain(wrong);
    // The stream errors instead of ending, so no consumer can mistake the empty output for a dump.
    await expect(streamed).rejects.toBe(err);
  });

  it('scrubs the password from the stderr it quotes', async () => {
    // A stand-in for pg_dump that prints its environment's password to stderr, as a careless wrapper might.
    const fakePgDump = join(scratch, 'fake-pg-dump-echoing-password');
    writeFileSync(fakePgDump, '#!/bin/sh\necho "connection failed for password=$PGPASSWORD (retry)" >&2\nexit 2\n', { mode: 0o755 });
    const { stream, done } = dumpDatabase({ config, password, pgDump: fakePgDump });
    stream.on('error', () => undefined);
    stream.resume();
    const err = (await done.catch((e: unknown) => e)) as DumpFailedError;
    expect(err).toBeInstanceOf(DumpFailedError);
    expect(err.message).toContain('password=[redacted] (retry)');
    expect(err.message).not.toContain(password);
    expect(err.stderrTail).not.toContain(password);
  });

  it('kills pg_dump when cancelled, and when its consumer goes away', async () => {
    const big = await scratchDatabase('big');
    await withClient(configFor(big), password, (client) =>
      client.query(`CREATE TABLE filler AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload FROM generate_series(1, 400000) g`),
    );
    const controller = new AbortController();
    const { stream, done } = dumpDatabase({
      config: configFor(big),
      password,
      compressLevel: 0,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    stream.on('error', () => undefined);
    stream.resume();
    await expect(done).rejects.toBeInstanceOf(PgToolAbortedError);

    const second = dumpDatabase({ config: configFor(big), password, compressLevel: 0 });
    second.stream.once('data', () => second.stream.destroy());
    await expect(second.done).rejects.toThrow(/output stream was closed/);

    const aborted = new AbortController();
    aborted.abort();
    const never = dumpDatabase({ config: configFor(big), password, signal: aborted.signal });
    never.stream.on('error', () => undefined);
    await expect(never.done).rejects.toBeInstanceOf(PgToolAbortedError);
  });

  it('reports a missing table by name', async () => {
    await expect(tableRowCounts(config, password, source, ['public.nope'])).rejects.toThrow(/table "public.nope" does not exist in database/);
  });
});
