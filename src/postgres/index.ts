// Public surface of the PostgreSQL layer.
export {
  DEBIAN_PG_LIB_DIR,
  assertDumpCompatibility,
  checkDumpCompatibility,
  findPgBinaries,
  findPgTool,
  parsePgToolVersion,
  pgToolVersion,
  serverMajorVersion,
  type DumpCompatibility,
  type FindToolOptions,
  type PgBinaries,
  type PgToolName,
  type PgToolVersion,
} from './binaries';
export { connectClient, connectionOptions, describeTarget, serverVersion, withClient, type ConnectionOverrides, type ServerVersion } from './connection';
export { dumpDatabase, type DumpHandle, type DumpOptions, type DumpProgress, type DumpResult } from './dump';
export {
  DatabaseStateError,
  DumpFailedError,
  InvalidDatabaseNameError,
  InvalidDumpError,
  PgConnectError,
  PgToolAbortedError,
  PgToolIncompatibleError,
  PgToolNotFoundError,
  PostgresError,
  RestoreFailedError,
  TableNotFoundError,
  scrubSecret,
} from './postgres-errors';
export {
  createDatabase,
  databaseExists,
  dropDatabase,
  listDump,
  parseDumpListing,
  renameDatabase,
  restoreDump,
  tableChecksums,
  tableRowCounts,
  validateDatabaseName,
  type AdminOptions,
  type CreateDatabaseOptions,
  type DropDatabaseOptions,
  type DumpListing,
  type ListDumpOptions,
  type RenameDatabaseOptions,
  type RestoreOptions,
  type RestoreResult,
  type RestoreSection,
} from './restore';
export { openSnapshot, withSnapshot, type Snapshot } from './snapshot';
export { checksumRows, countRows, largeTables, quoteTableName, tablePattern, type TableProgress, type TableSize } from './table-stats';
export { PROGRESS_INTERVAL_MS, type ToolProgress } from './tool-process';
export { restoreParts, type ArchiveSource, type PartsRestoreOptions, type PartsRestoreResult } from './parts-restore';
