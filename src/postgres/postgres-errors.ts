// Errors of the PostgreSQL layer, each with a stable code an operator can search for; none carries a password.

/** Base class: `code` is stable across releases, the message may be reworded. */
export class PostgresError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** pg_dump, pg_restore or psql could not be found where the configuration or the defaults point. */
export class PgToolNotFoundError extends PostgresError {
  constructor(tool: string, searched: readonly string[]) {
    super(
      'VPB_ERR_PG_TOOL_NOT_FOUND',
      `${tool} was not found (looked in: ${searched.join(', ') || 'nowhere'}); install the PostgreSQL client package ` +
        `(Debian/Ubuntu: postgresql-client-<major>) or set deployment.postgres.binDir to the directory that holds ${tool}`,
    );
  }
}

/** The pg_dump at hand is older than the server it would dump, or the server is too old for it. */
export class PgToolIncompatibleError extends PostgresError {
  constructor(message: string) {
    super('VPB_ERR_PG_TOOL_INCOMPATIBLE', message);
  }
}

/** A connection to the server could not be opened (host down, wrong password, missing database). */
export class PgConnectError extends PostgresError {
  constructor(target: string, detail: string, cause?: unknown) {
    super('VPB_ERR_PG_CONNECT', `cannot connect to PostgreSQL ${target}: ${detail}`, { cause });
  }
}

/** pg_dump exited non-zero; the stream it produced must not be committed as a backup. */
export class DumpFailedError extends PostgresError {
  readonly exitCode: number | null;
  readonly stderrTail: string;
  constructor(message: string, exitCode: number | null, stderrTail: string) {
    super('VPB_ERR_PG_DUMP_FAILED', message);
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

/** pg_restore exited non-zero while restoring; the target database holds a partial restore. */
export class RestoreFailedError extends PostgresError {
  readonly exitCode: number | null;
  readonly stderrTail: string;
  constructor(message: string, exitCode: number | null, stderrTail: string) {
    super('VPB_ERR_PG_RESTORE_FAILED', message);
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

/** The bytes given as a dump are not something pg_restore can read. */
export class InvalidDumpError extends PostgresError {
  readonly stderrTail: string;
  constructor(stderrTail: string) {
    super(
      'VPB_ERR_PG_INVALID_DUMP',
      `the dump is not a valid pg_dump custom-format archive (pg_restore --list failed${stderrTail ? `: ${stderrTail}` : ''})`,
    );
    this.stderrTail = stderrTail;
  }
}

/** A database name outside the safe alphabet; rejected before any SQL is sent. */
export class InvalidDatabaseNameError extends PostgresError {
  constructor(name: string) {
    super(
      'VPB_ERR_PG_INVALID_DATABASE_NAME',
      `invalid database name ${JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name)}: ` +
        'use 1 to 63 letters, digits and underscores',
    );
  }
}

/** The database a step needs is absent, or one it would create is already there. */
export class DatabaseStateError extends PostgresError {
  constructor(code: 'VPB_ERR_PG_DATABASE_MISSING' | 'VPB_ERR_PG_DATABASE_EXISTS' | 'VPB_ERR_PG_DATABASE_NOT_EMPTY' | 'VPB_ERR_PG_DATABASE_BUSY', message: string) {
    super(code, message);
  }
}

/** A table named for counting or checksumming does not exist or its name cannot be parsed. */
export class TableNotFoundError extends PostgresError {
  constructor(table: string, database: string) {
    super('VPB_ERR_PG_TABLE_NOT_FOUND', `table ${JSON.stringify(table)} does not exist in database "${database}"`);
  }
}

/** The caller's AbortSignal fired; the child process was killed. */
export class PgToolAbortedError extends PostgresError {
  constructor(tool: string) {
    super('VPB_ERR_PG_ABORTED', `${tool} was cancelled and its process killed`);
  }
}

/**
 * Replaces every occurrence of the secret in a text that is about to leave the process (error messages, logs).
 * libpq never echoes a password, but a server-side error can quote a connection string a user pasted somewhere.
 */
export function scrubSecret(text: string, secret: string | undefined): string {
  if (!secret) return text;
  return text.split(secret).join('[redacted]');
}
