// The database dump as parts: the main archive (schema and small tables) and one data-only archive per large table.
import type { Artifact } from './manifest';

/** Manifest name of the main archive: the whole database in single-artifact backups, the schema and small tables otherwise. */
export const DB_ARTIFACT_NAME = 'db';
/** Manifest names of table parts: `db:<schema.table>`. */
export const DB_PART_PREFIX = 'db:';

/** A backup's artifacts: the three every backup has, and the database's table parts when the dump was split. */
export type BackupArtifacts = { db: Artifact; connectors: Artifact; recordingsIndex: Artifact } & Record<string, Artifact>;

export interface DatabasePart {
  /** Its name among the manifest's artifacts. */
  name: string;
  /** "schema.table" whose rows it holds. */
  table: string;
  artifact: Artifact;
}

export function partArtifactName(table: string): string {
  return `${DB_PART_PREFIX}${table}`;
}

/** Storage name of a table part: numbered, since a table name may hold any character. */
export function partFileName(index: number): string {
  return `db.part-${String(index + 1).padStart(3, '0')}.dump.enc`;
}

/** The table parts among a backup's artifacts, largest first (the order a parallel restore starts them in). */
export function databaseParts(artifacts: Record<string, Artifact>): DatabasePart[] {
  const parts: DatabasePart[] = [];
  for (const [name, artifact] of Object.entries(artifacts)) {
    if (!name.startsWith(DB_PART_PREFIX)) continue;
    const table = artifact.table ?? name.slice(DB_PART_PREFIX.length);
    parts.push({ name, table, artifact });
  }
  return parts.sort((a, b) => b.artifact.plaintextBytes - a.artifact.plaintextBytes || a.table.localeCompare(b.table));
}

/** Plaintext bytes of the whole database dump, parts included. */
export function databaseBytes(artifacts: Record<string, Artifact>): number {
  return artifacts[DB_ARTIFACT_NAME]!.plaintextBytes + databaseParts(artifacts).reduce((sum, p) => sum + p.artifact.plaintextBytes, 0);
}
