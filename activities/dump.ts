// Seed step 2: the consistent point (snapshot, connector export, recordings clock) under a short pause, then the
// pg_dump of that snapshot streamed through encryption and SHA-256 into the primary location.
import { Context, activityInfo } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import { writeArtifact } from '../src/catalog/artifacts';
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
        // Counted after the pause: the snapshot still sees exactly the consistent point, and counting a large
        // audit log would otherwise lengthen the write pause.
        const rowCounts = await snapshot.rowCounts([...KEY_TABLES], (progress) => ctx.heartbeat(progress));
        ctx.heartbeat({ phase: 'pg_dump', bytes: 0 });

        const connectors = await storeConnectors(location, input.deployment, input.backupId, inventory, dataKey);
        // pg_dump's own progress drives the heartbeat: it keeps reporting while pg_dump reads a large catalog in silence.
        const dumpRun = dumpDatabase({
          config: deployment.postgres,
          password,
          snapshotId: snapshot.snapshotId,
          signal,
          serverVersionNum: snapshot.serverVersionNum,
          compressLevel: DUMP_COMPRESS_LEVEL,
          onProgress: (progress) => ctx.heartbeat(progress),
        });
        // Once pg_dump has exited, the last buffered part is still being encrypted and uploaded: that reports its own bytes.
        let dumpEnded = false;
        dumpRun.done.then(
          () => (dumpEnded = true),
          () => undefined,
        );
        const [db] = await Promise.all([
          writeArtifact(location, backupKey(input.deployment, input.backupId, DB_ARTIFACT), dumpRun.stream, dataKey, {
            onBytes: (bytes) => {
              if (dumpEnded) ctx.heartbeat({ phase: 'uploading the dump', bytes });
            },
            signal,
          }),
          dumpRun.done,
        ]);
        const versionText = await serverVersionText(snapshot);
        return {
          quiesce: { startedAt: pauseStarted.toISOString(), endedAt: pauseEnded.toISOString(), pauseMs: pauseEnded.getTime() - pauseStarted.getTime(), recordingsPoint },
          postgres: { serverVersion: versionText, database: deployment.postgres.database, rowCounts },
          db,
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
async function bucketClock(deps: Dependencies, target: TargetName): Promise<string> {
  const client = deps.recordingsClient(target);
  const bucket = deps.deployment(target).recordings.bucket;
  await client.putObject(bucket, CLOCK_MARKER, Buffer.from('vaultpam-backup consistent point'));
  const stat = await client.statObject(bucket, CLOCK_MARKER);
  await client.removeObject(bucket, CLOCK_MARKER);
  return stat.lastModified.toISOString();
}
