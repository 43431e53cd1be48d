// Locating pg_dump / pg_restore / psql, reading their versions, and checking pg_dump against the server it dumps.
import { execFile } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { PostgresConfig } from '../config/schema';
import { PgToolIncompatibleError, PgToolNotFoundError } from './postgres-errors';

const execFileAsync = promisify(execFile);

/** Client tools, and the server's own (initdb-free recovery runs `pg_ctl`, which runs `postgres`). */
export type PgToolName = 'pg_dump' | 'pg_restore' | 'psql' | 'pg_basebackup' | 'pg_receivewal' | 'pg_ctl' | 'postgres';

/** Where Debian/Ubuntu packages put each major version's binaries side by side. */
export const DEBIAN_PG_LIB_DIR = '/usr/lib/postgresql';

export interface PgToolVersion {
  /** e.g. 15 for 15.18; for pre-10 releases the first number (9 for 9.6.24). */
  major: number;
  /** e.g. 18 for 15.18; for pre-10 releases the second number (6 for 9.6.24). */
  minor: number;
  /** The whole `--version` line, e.g. "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)". */
  text: string;
}

export interface FindToolOptions {
  /** Overrides the newest-first scan of /usr/lib/postgresql; tests point it at a scratch tree. */
  libDir?: string;
  /** @default process.env.PATH */
  path?: string;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Major-version directories under /usr/lib/postgresql, newest first (a newer pg_dump can dump older servers). */
function versionedBinDirs(libDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(libDir);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^\d+(\.\d+)?$/.test(n))
    .sort((a, b) => Number(b) - Number(a))
    .map((n) => join(libDir, n, 'bin'));
}

/**
 * The path of a PostgreSQL client tool: `binDir` from the configuration if set (and nothing else, so a
 * misconfigured binDir is reported rather than silently bypassed), else the newest /usr/lib/postgresql/<major>/bin,
 * else the first match on PATH.
 */
export function findPgTool(tool: PgToolName, config: Pick<PostgresConfig, 'binDir'> = {}, options: FindToolOptions = {}): string {
  if (config.binDir) {
    const file = join(config.binDir, tool);
    if (isExecutable(file)) return file;
    throw new PgToolNotFoundError(tool, [`${config.binDir} (deployment.postgres.binDir)`]);
  }
  const searched: string[] = [];
  const libDir = options.libDir ?? DEBIAN_PG_LIB_DIR;
  for (const dir of versionedBinDirs(libDir)) {
    const file = join(dir, tool);
    if (isExecutable(file)) return file;
  }
  searched.push(`${libDir}/*/bin`);
  const pathDirs = (options.path ?? process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const dir of pathDirs) {
    const file = join(dir, tool);
    if (isExecutable(file)) return file;
  }
  searched.push('PATH');
  throw new PgToolNotFoundError(tool, searched);
}

export interface PgBinaries {
  pgDump: string;
  pgRestore: string;
}

/** pg_dump and pg_restore, found by the same rules (see `findPgTool`). */
export function findPgBinaries(config: Pick<PostgresConfig, 'binDir'> = {}, options: FindToolOptions = {}): PgBinaries {
  return { pgDump: findPgTool('pg_dump', config, options), pgRestore: findPgTool('pg_restore', config, options) };
}

/** Parses a `--version` line such as "pg_dump (PostgreSQL) 15.18 (Debian ...)" or "pg_restore (PostgreSQL) 17beta1". */
export function parsePgToolVersion(text: string): PgToolVersion {
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) throw new Error(`cannot read a PostgreSQL version from ${JSON.stringify(text.trim().slice(0, 200))}`);
  return { major: Number(match[1]), minor: Number(match[2] ?? 0), text: text.trim() };
}

/** Runs `<bin> --version`. */
export async function pgToolVersion(bin: string): Promise<PgToolVersion> {
  const { stdout } = await execFileAsync(bin, ['--version'], { timeout: 10_000, env: { ...process.env, LC_ALL: 'C' } });
  return parsePgToolVersion(stdout);
}

/** Major version of a server from `server_version_num` (150018 -> 15; 90624 -> 9.6, the pre-10 scheme). */
export function serverMajorVersion(serverVersionNum: number): number {
  if (serverVersionNum >= 100000) return Math.floor(serverVersionNum / 10000);
  return Math.floor(serverVersionNum / 10000) + (Math.floor(serverVersionNum / 100) % 100) / 10;
}

export type DumpCompatibility = { ok: true } | { ok: false; message: string };

/** The oldest server each pg_dump still dumps: 9.2 for pg_dump 15 and later, 8.0 before. */
function oldestDumpableServer(dumpMajor: number): number {
  return dumpMajor >= 15 ? 9.2 : 8.0;
}

/**
 * pg_dump refuses to dump a server of a newer major version than its own, and recent pg_dumps drop support for
 * very old servers; say which package fixes it rather than letting the dump fail half-way through a backup.
 */
export function checkDumpCompatibility(serverVersionNum: number, dumpMajor: number): DumpCompatibility {
  const serverMajor = serverMajorVersion(serverVersionNum);
  if (dumpMajor < serverMajor) {
    return {
      ok: false,
      message:
        `pg_dump ${dumpMajor} cannot dump a PostgreSQL ${serverMajor} server (pg_dump must be the server's major version or newer); ` +
        `install postgresql-client-${serverMajor} (or newer) and point deployment.postgres.binDir at its bin directory ` +
        `(e.g. ${DEBIAN_PG_LIB_DIR}/${serverMajor}/bin)`,
    };
  }
  const oldest = oldestDumpableServer(dumpMajor);
  if (serverMajor < oldest) {
    return {
      ok: false,
      message:
        `pg_dump ${dumpMajor} no longer supports PostgreSQL ${serverMajor} servers (oldest supported: ${oldest}); ` +
        `install postgresql-client-14 (or any client from 10 to 14) and point deployment.postgres.binDir at its bin directory`,
    };
  }
  return { ok: true };
}

/** `checkDumpCompatibility`, thrown as an error with a stable code. */
export function assertDumpCompatibility(serverVersionNum: number, dumpMajor: number): void {
  const result = checkDumpCompatibility(serverVersionNum, dumpMajor);
  if (!result.ok) throw new PgToolIncompatibleError(result.message);
}
