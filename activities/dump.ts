// Seed step 2: the consistent point (snapshot, connector export, recordings clock) under a short pause, then the
// pg_dumps of that snapshot (schema and small tables; each large table apart) streamed through encryption and SHA-256.
import { Context, activityInfo } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import type { PostgresConfig } from '../src/config/schema';
import { writeArtifact } from '../src/catalog/artifacts';
import { DB_ARTIFACT_NAME, partArtifactName, partFileName } from '../src/catalog/database-parts';
import type { Artifact } from '../src/catalog/manifest';
import { faultPoint } from '../src/runtime/fault-points';
import type { BackupLocation } from '../src/storage';
import { dumpDatabase, openSnapshot, type Snapshot } from '../src/postgres';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupKey } from '../src/storage';
import type { CaptureResult } from '../workflows/backup-types';
import { backupDataKey, primaryLocation } from './backup-context';
import { exportConnectors, storeConnectors } from './export';

export const DB_ARTIFACT = 'db.dump.enc';
export const KEY_TABLES = ['resources', 'safes', 'credentials', 'audit_log', 'sessions', 'connectors'] as const;
/** Kept inside the recordings bucket for a moment to read the bucket's own clock at the consistent point. */
export const CLOCK_MARKER = '.vaultpam-backup/consistent-point';
/** pg_dump's zlib level for the dump: fast, since the archive is encrypted (incompressible) right after. */
export const DUMP_COMPRESS_LEVEL = 1;

/** Crash points of the dump, for tests (VAULTPAM_FAULT_POINT). */
export const DUMP_FAULT_POINTS = {
  /** An artifact of the dump is stored and named in the checkpoint; the others may be running or not yet started. */
  partStored: 'dump:part-stored',
} as const;

/** What a retry of the dump may keep: the split of the dump and the artifacts already stored, under one snapshot. */
export interface DumpCheckpoint {
  /** The snapshot's visibility (Snapshot.visibility): a retry whose new snapshot differs starts over. */
  visibility: string;
  /** Tables dumped as parts of their own, in part order. */
  tables: string[];
  /** Artifacts stored whole, by manifest name (`db`, `db:<schema.table>`). */
  stored: Record<string, Artifact>;
}

/** The artifacts of a checkpoint that are still at the location with their recorded size. */
async function stillStored(location: BackupLocation, stored: Record<string, Artifact>): Promise<Record<string, Artifact>> {
  const kept: Record<string, Artifact> = {};
  for (const [name, artifact] of Object.entries(stored)) {
    const stat = await location.stat(artifact.key);
    if (stat?.size === artifact.size) kept[name] = artifact;
  }
  return kept;
}

/** Runs `work` on each item, at most `limit` at a time; the first failure stops new starts and is thrown once all ran. */
async function runConcurrently<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>, onFailure: () => void): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        if (!failure) {
          failure = { error };
          onFailure();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failure) throw failure.error;
}

export interface SnapshotDumpInput {
  ctx: Context;
  snapshot: Snapshot;
  postgres: PostgresConfig;
  password: string | undefined;
  location: BackupLocation;
  deployment: string;
  backupId: string;
  dataKey: Buffer;
  settings: { jobs: number; minTableBytes: number };
}

/**
 * The pg_dumps of one exported snapshot (schema and small tables; each large table apart), each streamed through
 * encryption and SHA-256 to the location, with the exact row counts of the key tables taken beside them. Heartbeats
 * carry a checkpoint: a retry whose snapshot sees exactly the same keeps the artifacts already stored.
 */
export async function dumpSnapshot(input: SnapshotDumpInput): Promise<{ db: Artifact; dbParts: Record<string, Artifact>; rowCounts: Record<string, number> }> {
  const { ctx, snapshot, location, dataKey, settings } = input;
  const signal = ctx.cancellationSignal;
  // The split into parts is kept from an earlier attempt only when its snapshot saw exactly what this one sees:
  // otherwise parts of two points in time would make one backup. Then what that attempt stored is kept.
  const earlier = (activityInfo().heartbeatDetails as { checkpoint?: DumpCheckpoint } | undefined)?.checkpoint;
  const resumable = earlier !== undefined && earlier.visibility === snapshot.visibility;
  const tables = resumable ? earlier.tables : (await snapshot.largeTables(settings.minTableBytes)).map((t) => t.table);
  const checkpoint: DumpCheckpoint = { visibility: snapshot.visibility, tables, stored: resumable ? await stillStored(location, earlier.stored) : {} };

  const runs = new Map<string, number>();
  const beat = (phase: string) => {
    const bytes = [...runs.values()].reduce((a, b) => a + b, 0);
    ctx.heartbeat({ phase, bytes, running: [...runs.keys()], stored: Object.keys(checkpoint.stored).length, of: tables.length + 1, checkpoint });
  };
  beat('pg_dump');
  const jobs = [
    { name: DB_ARTIFACT_NAME, file: DB_ARTIFACT, options: tables.length ? { excludeTableData: tables } : {} },
    ...tables.map((table, index) => ({ name: partArtifactName(table), file: partFileName(index), options: { table } })),
  ].filter((job) => !checkpoint.stored[job.name]);

  // One failed dump stops the others: the retry redoes what was not stored anyway.
  const stopAll = new AbortController();
  const stopOnCancel = () => stopAll.abort();
  signal.addEventListener('abort', stopOnCancel, { once: true });
  const dumpOne = async (job: (typeof jobs)[number]): Promise<void> => {
    runs.set(job.name, 0);
    // pg_dump's own progress drives the heartbeat: it keeps reporting while pg_dump reads a large catalog in silence.
    const dumpRun = dumpDatabase({
      config: input.postgres,
      password: input.password,
      snapshotId: snapshot.snapshotId,
      signal: stopAll.signal,
      serverVersionNum: snapshot.serverVersionNum,
      compressLevel: DUMP_COMPRESS_LEVEL,
      ...job.options,
      onProgress: (progress) => {
        runs.set(job.name, progress.bytes);
        beat(progress.phase);
      },
    });
    // Once pg_dump has exited, the last buffered part is still being encrypted and uploaded: that reports its own bytes.
    let dumpEnded = false;
    dumpRun.done.then(
      () => (dumpEnded = true),
      () => undefined,
    );
    const [artifact] = await Promise.all([
      writeArtifact(location, backupKey(input.deployment, input.backupId, job.file), dumpRun.stream, dataKey, {
        onBytes: (bytes) => {
          if (dumpEnded) beat('uploading the dump');
          else runs.set(job.name, bytes);
        },
        signal: stopAll.signal,
      }),
      dumpRun.done,
    ]);
    runs.delete(job.name);
    // Stored whole (a location's put is atomic) before the checkpoint names it: a retry never takes a partial one.
    checkpoint.stored[job.name] = 'table' in job.options && job.options.table ? { ...artifact, table: job.options.table } : artifact;
    beat('pg_dump');
    faultPoint(DUMP_FAULT_POINTS.partStored);
  };
  // The row counts run on the snapshot's own connection beside the pg_dumps: a count of a large table takes
  // as long as a scan, which the dump need not wait for.
  const counting = snapshot.rowCounts([...KEY_TABLES], (progress) => beat(progress.phase));
  let rowCounts: Record<string, number>;
  try {
    const [, counts] = await Promise.all([runConcurrently(jobs, settings.jobs, dumpOne, () => stopAll.abort()), counting.catch((err: unknown) => {
      stopAll.abort();
      throw err;
    })]);
    rowCounts = counts;
  } finally {
    signal.removeEventListener('abort', stopOnCancel);
  }

  const { [DB_ARTIFACT_NAME]: db, ...dbParts } = checkpoint.stored;
  if (!db) throw new Error('the main database archive is missing after the dump');
  return { db, dbParts, rowCounts };
}

export function createDumpActivities(deps: Dependencies) {
  return {
    async dump(input: { deployment: string; backupId: string; target: TargetName; quiesceStartedAt: string }): Promise<CaptureResult> {
      const ctx = Context.current();
      const signal = ctx.cancellationSignal;
      const deployment = deps.deployment(input.target);
      const cp = deps.controlPlane(input.target);
      const password = deps.postgresPassword(input.target);
      const location = primaryLocation(deps);
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      const settings = deps.config.backup.parallelDump;

      // A retry after a crash may find the pause already ended: quiesce again so the new snapshot is consistent too.
      if (activityInfo().attempt > 1) await cp.setMaintenance(true, `vaultpam-backup: backup ${input.backupId} (retry)`, signal);
      const pauseStarted = activityInfo().attempt > 1 ? deps.now() : new Date(input.quiesceStartedAt);

      let snapshot: Snapshot | undefined;
      let unquiesced = false;
      const unquiesce = async () => {
        if (unquiesced) return;
        unquiesced = true;
        await cp.setMaintenance(false, `vaultpam-backup: backup ${input.backupId} holds its consistent point`);
      };
      try {
        snapshot = await openSnapshot(deployment.postgres, password);
        const inventory = await exportConnectors(deps, input.target, signal);
        const recordingsPoint = await bucketClock(deps, input.target);
        await unquiesce();
        const pauseEnded = deps.now();
        // Rows are counted after the pause (below): the snapshot still sees exactly the consistent point, and
        // counting a large audit log would otherwise lengthen the write pause.
        const connectors = await storeConnectors(location, input.deployment, input.backupId, inventory, dataKey);

        const { db, dbParts, rowCounts } = await dumpSnapshot({ ctx, snapshot, postgres: deployment.postgres, password, location, deployment: input.deployment, backupId: input.backupId, dataKey, settings });
        const versionText = await serverVersionText(snapshot);
        return {
          quiesce: { startedAt: pauseStarted.toISOString(), endedAt: pauseEnded.toISOString(), pauseMs: pauseEnded.getTime() - pauseStarted.getTime(), recordingsPoint, databasePoint: snapshot.takenAtText },
          postgres: { serverVersion: versionText, database: deployment.postgres.database, rowCounts },
          db,
          dbParts,
          connectors,
          connectorCount: inventory.connectors.length,
        };
      } finally {
        await unquiesce().catch(() => undefined);
        await snapshot?.close().catch(() => undefined);
      }
    },
  };
}

async function serverVersionText(snapshot: Snapshot): Promise<string> {
  const num = snapshot.serverVersionNum;
  return `${Math.floor(num / 10000)}.${num % 10000}`;
}

/** The recordings bucket's clock, read from a marker object written and removed inside the pause. */
export async function bucketClock(deps: Dependencies, target: TargetName): Promise<string> {
  const client = deps.recordingsClient(target);
  const bucket = deps.deployment(target).recordings.bucket;
  await client.putObject(bucket, CLOCK_MARKER, Buffer.from('vaultpam-backup consistent point'));
  const stat = await client.statObject(bucket, CLOCK_MARKER);
  await client.removeObject(bucket, CLOCK_MARKER);
  return stat.lastModified.toISOString();
}
