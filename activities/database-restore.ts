// A backup's database into an empty database: one pg_restore for a single-archive dump, or the split restore of
// the main archive and its table parts, each decrypted from the location as it streams.
import { openArtifact } from '../src/catalog/artifacts';
import { DB_ARTIFACT_NAME, databaseParts } from '../src/catalog/database-parts';
import type { Artifact } from '../src/catalog/manifest';
import type { PostgresConfig } from '../src/config/schema';
import { restoreDump, restoreParts, type ToolProgress } from '../src/postgres';
import type { BackupLocation } from '../src/storage';

export interface BackupDatabaseRestore {
  location: BackupLocation;
  /** The manifest's artifacts: `db`, and `db:<schema.table>` parts when the dump was split. */
  artifacts: Record<string, Artifact>;
  dataKey: Buffer;
  config: PostgresConfig;
  password: string | undefined;
  /** An existing, empty database. */
  database: string;
  /** pg_restore processes loading rows at once (split dumps only). */
  jobs: number;
  signal?: AbortSignal;
  onProgress?: (progress: ToolProgress & { running?: string[] }) => void;
}

export async function restoreBackupDatabase(options: BackupDatabaseRestore): Promise<void> {
  const { location, artifacts, dataKey, config, password, database, signal, onProgress } = options;
  const main = artifacts[DB_ARTIFACT_NAME];
  if (!main) throw new Error('the backup lists no database dump (artifact "db")');
  const parts = databaseParts(artifacts);
  if (parts.length === 0) {
    await restoreDump({ config, password, database, stream: await openArtifact(location, main, dataKey), ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) });
    return;
  }
  await restoreParts({
    config,
    password,
    database,
    jobs: options.jobs,
    main: { label: 'main archive', open: () => openArtifact(location, main, dataKey) },
    parts: parts.map((part) => ({ label: part.table, open: () => openArtifact(location, part.artifact, dataKey) })),
    ...(signal ? { signal } : {}),
    ...(onProgress ? { onProgress } : {}),
  });
}
