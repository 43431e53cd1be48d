// The PostgreSQL layer's pure parts: tool discovery, version rules, archive listings, names and quoting.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  InvalidDatabaseNameError,
  PgToolNotFoundError,
  checkDumpCompatibility,
  findPgTool,
  parseDumpListing,
  parsePgToolVersion,
  quoteTableName,
  scrubSecret,
  tablePattern,
  serverMajorVersion,
  validateDatabaseName,
} from '../../src/postgres';
import { dbnameArgument, libpqArguments, toolEnvironment } from '../../src/postgres/tool-process';
import { tableOfEntry, tocEntry } from '../../src/postgres/restore';
import { databaseParts, partArtifactName } from '../../src/catalog/database-parts';

function executable(path: string): void {
  writeFileSync(path, '#!/bin/sh\n');
  chmodSync(path, 0o755);
}

describe('postgres tools', () => {
  it('prefers binDir, then the newest /usr/lib/postgresql/<major>/bin, then PATH', () => {
    const root = mkdtempSync(join(tmpdir(), 'pgbin-'));
    for (const major of ['9.6', '13', '16']) {
      mkdirSync(join(root, 'lib', major, 'bin'), { recursive: true });
      executable(join(root, 'lib', major, 'bin', 'pg_dump'));
    }
    mkdirSync(join(root, 'path'));
    executable(join(root, 'path', 'pg_restore'));
    const options = { libDir: join(root, 'lib'), path: join(root, 'path') };

    expect(findPgTool('pg_dump', {}, options)).toBe(join(root, 'lib', '16', 'bin', 'pg_dump'));
    expect(findPgTool('pg_dump', { binDir: join(root, 'lib', '13', 'bin') }, options)).toBe(join(root, 'lib', '13', 'bin', 'pg_dump'));
    expect(findPgTool('pg_restore', {}, options)).toBe(join(root, 'path', 'pg_restore'));
    // A binDir that lacks the tool is an error, not a silent fallback to another version.
    expect(() => findPgTool('pg_restore', { binDir: join(root, 'lib', '13', 'bin') }, options)).toThrow(/deployment\.postgres\.binDir/);
    expect(() => findPgTool('psql', {}, options)).toThrow(PgToolNotFoundError);
  });

  it('reads versions and says which pg_dump to install', () => {
    expect(parsePgToolVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n')).toMatchObject({ major: 15, minor: 18 });
    expect(parsePgToolVersion('pg_restore (PostgreSQL) 17beta1')).toMatchObject({ major: 17, minor: 0 });
    expect(() => parsePgToolVersion('bash: pg_dump: not found')).toThrow(/cannot read a PostgreSQL version/);
    expect(serverMajorVersion(150018)).toBe(15);
    expect(serverMajorVersion(90624)).toBe(9.6);

    expect(checkDumpCompatibility(150018, 15)).toEqual({ ok: true });
    expect(checkDumpCompatibility(140011, 17)).toEqual({ ok: true });
    const tooOld = checkDumpCompatibility(160004, 15);
    expect(tooOld.ok).toBe(false);
    expect(!tooOld.ok && tooOld.message).toMatch(/pg_dump 15 cannot dump a PostgreSQL 16 server.*install postgresql-client-16/);
    const ancient = checkDumpCompatibility(90124, 16);
    expect(!ancient.ok && ancient.message).toMatch(/no longer supports PostgreSQL 9.1/);
  });
});

describe('pg_restore --list output', () => {
  const listing = `;
; Archive created at 2026-11-27 13:32:31 UTC
;     dbname: vaultpam
;     TOC Entries: 12
;     Format: CUSTOM
;     Dumped from database version: 15.18 (Debian 15.18-0+deb12u1)
;     Dumped by pg_dump version: 15.18 (Debian 15.18-0+deb12u1)
;
;
; Selected TOC Entries:
;
5; 2615 16400 SCHEMA - vault vaultpam
214; 1259 16390 TABLE public audit_log vaultpam
215; 1259 16395 TABLE vault credentials vaultpam
216; 1259 16396 SEQUENCE public audit_log_id_seq vaultpam
3345; 0 16390 TABLE DATA public audit_log vaultpam
3346; 0 16395 TABLE DATA vault credentials vaultpam
3347; 0 0 SEQUENCE SET public audit_log_id_seq vaultpam
3202; 2606 16399 CONSTRAINT public audit_log audit_log_pkey vaultpam
3200; 1259 16400 INDEX public audit_log_at_idx vaultpam
`;

  it('counts entries and names the tables and the tables with data', () => {
    expect(parseDumpListing(listing)).toEqual({
      entries: 9,
      tables: ['public.audit_log', 'vault.credentials'],
      tablesWithData: ['public.audit_log', 'vault.credentials'],
      database: 'vaultpam',
      format: 'CUSTOM',
      dumpedFromVersion: '15.18 (Debian 15.18-0+deb12u1)',
      dumpedByVersion: '15.18 (Debian 15.18-0+deb12u1)',
    });
  });
});

describe('a dump in table parts', () => {
  it('writes -t patterns that match one table only, whatever its name holds', () => {
    expect(tablePattern('public.audit_log')).toBe('"public"."audit_log"');
    expect(tablePattern('audit_log')).toBe('"public"."audit_log"');
    // Pattern characters and quotes are literal inside double quotes; a quote is doubled.
    expect(tablePattern('app.we*ird."t"?')).toBe('"app"."we*ird.""t""?"');
  });

  it('reads table entries and entry ids from pg_restore --list lines', () => {
    expect(tocEntry('3280; 1259 16494 INDEX public audit_log_at_idx vaultpam')).toEqual({ id: 3280, rest: 'INDEX public audit_log_at_idx vaultpam' });
    expect(tableOfEntry('221; 1259 16484 TABLE public audit_log vaultpam')).toBe('public.audit_log');
    expect(tableOfEntry('3400; 0 16484 TABLE DATA public audit_log vaultpam')).toBeUndefined();
    expect(tocEntry('; Archive created at 2026-12-02')).toBeUndefined();
  });

  it('finds the parts among the artifacts, largest first, and leaves the others', () => {
    const artifact = (key: string, plaintextBytes: number, table?: string) => ({ key, size: plaintextBytes + 41, sha256: 'a'.repeat(64), plaintextBytes, plaintextSha256: 'b'.repeat(64), ...(table ? { table } : {}) });
    const artifacts = {
      db: artifact('db.dump.enc', 10),
      connectors: artifact('connectors.json.enc', 1),
      recordingsIndex: artifact('recordings.index.enc', 1),
      [partArtifactName('public.small')]: artifact('db.part-002.dump.enc', 100, 'public.small'),
      [partArtifactName('public.big')]: artifact('db.part-001.dump.enc', 900, 'public.big'),
    };
    expect(databaseParts(artifacts).map((p) => [p.name, p.table])).toEqual([
      ['db:public.big', 'public.big'],
      ['db:public.small', 'public.small'],
    ]);
    expect(databaseParts({ db: artifacts.db, connectors: artifacts.connectors, recordingsIndex: artifacts.recordingsIndex })).toEqual([]);
  });
});

describe('names, quoting and secrets', () => {
  it('accepts 1-63 letters, digits and underscores only', () => {
    for (const good of ['vaultpam', 'vaultpam_restore_20260101', 'A1', 'x'.repeat(63)]) expect(() => validateDatabaseName(good)).not.toThrow();
    for (const bad of ['', 'x'.repeat(64), 'with-dash', 'with space', 'quote"', 'semi;colon', 'é']) {
      expect(() => validateDatabaseName(bad)).toThrow(InvalidDatabaseNameError);
    }
  });

  it('quotes table names and keeps connection strings out of -d', () => {
    expect(quoteTableName('audit_log')).toBe('"public"."audit_log"');
    expect(quoteTableName('vault.Credentials')).toBe('"vault"."Credentials"');
    expect(quoteTableName('odd."name')).toBe('"odd"."""name"');
    expect(dbnameArgument('vaultpam')).toBe('vaultpam');
    expect(dbnameArgument("host=evil.example dbname=x'y")).toBe("dbname='host=evil.example dbname=x\\'y'");
    expect(dbnameArgument('postgresql://evil/db')).toBe("dbname='postgresql://evil/db'");
  });

  it('passes the password by environment only, and scrubs it from text', () => {
    const config = { host: '127.0.0.1', port: 55432, database: 'vaultpam', user: 'vaultpam' };
    expect(libpqArguments(config, 'vaultpam').join(' ')).not.toMatch(/s3cret/);
    expect(toolEnvironment('s3cret').PGPASSWORD).toBe('s3cret');
    expect(scrubSecret('FATAL: password s3cret rejected; s3cret', 's3cret')).toBe('FATAL: password [redacted] rejected; [redacted]');
    expect(scrubSecret('nothing to hide', '')).toBe('nothing to hide');
  });
});
