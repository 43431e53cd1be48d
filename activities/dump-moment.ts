// A backup made from a moment of point-in-time protection: the cluster recovered to the moment in a scratch instance
// and the one database dumped from it; the recordings index of the checkpoint in force then; the connector export in
// force then. Written like any backup's artifacts, so the restore that follows is the ordinary one.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Readable } from 'node:stream';
import { writeArtifact } from '../src/catalog/artifacts';
import { jsonLine } from '../src/catalog/json-lines';
import { openSnapshot, type Snapshot } from '../src/postgres';
import { discardScratchDir, scratchPaths } from '../src/postgres/scratch-instance';
import type { Dependencies } from '../src/runtime/dependencies';
import { faultPoint } from '../src/runtime/fault-points';
import { backupKey } from '../src/storage';
import type { CaptureResult, Artifact } from '../workflows/backup-types';
import { backupDataKey, primaryLocation } from './backup-context';
import { readConnectorExport } from './checkpoint-connectors';
import { dumpSnapshot } from './dump';
import { storeConnectors } from './export';
import { checkpointAt, checkpointEntries, connectorExportAt, type PointInTimeSelection } from './point-in-time';
import { DEFAULT_SCRATCH_ROOT, recoverScratchInstance } from './recover-to-moment';
import { INDEX_ARTIFACT } from './sync';

/** Crash points of the moment's dump, for tests (VAULTPAM_FAULT_POINT). */
export const DUMP_MOMENT_FAULT_POINTS = {
  /** The dump is stored and the scratch instance still runs: a retry must find its way around both. */
  dumped: 'dump-moment:dumped',
} as const;

export interface DumpMomentInput {
  deployment: string;
  backupId: string;
  /** The moment, as selectPointInTime answered it (its checkpoint and export are the ones used here). */
  selection: PointInTimeSelection;
  /** Where the scratch instance lives. @default <os tmpdir>/vaultpam-backup-scratch */
  scratchRoot?: string;
}

export interface MomentCapture extends CaptureResult {
  recordingsIndex: Artifact;
  recordings: { objects: number; bytes: number };
  /** The base backup the moment was recovered from, and the WAL segments replayed. */
  baseId: string;
  segments: number;
}

/** The moment as a manifest's databasePoint: ISO 8601 UTC to the microsecond. */
export function momentPoint(at: string): string {
  return new Date(at).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function createDumpMomentActivities(deps: Dependencies) {
  return {
    /**
     * Recovers production's cluster to the moment in a scratch instance (removed again whatever happens), dumps the
     * deployment's database from it, and writes the connectors and recordings index of the moment beside the dump.
     * Safe to retry: the scratch instance is made again under the same id, the dump keeps the parts a retry may keep
     * (the recovered data is the same), and nothing here is committed until the workflow writes the manifest.
     */
    async dumpMoment(input: DumpMomentInput): Promise<MomentCapture> {
      const ctx = Context.current();
      const signal = ctx.cancellationSignal;
      const deployment = deps.deployment('production');
      const password = deps.postgresPassword('production');
      const location = primaryLocation(deps);
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      const at = new Date(input.selection.at);
      const scratchId = `moment-${input.backupId.toLowerCase()}`;
      const scratchRoot = input.scratchRoot ?? DEFAULT_SCRATCH_ROOT;

      // The checkpoint and the export are the ones the selection named: a prune between the two calls would show here.
      const checkpoint = await checkpointAt(deps, input.deployment, at);
      const exported = await connectorExportAt(deps, input.deployment, at);
      if (checkpoint.id !== input.selection.checkpoint.checkpointId || exported.id !== input.selection.connectors.exportId) {
        throw ApplicationFailure.create({
          type: 'MomentChanged',
          nonRetryable: true,
          message: `the checkpoint or connector export in force at ${input.selection.at} changed since the moment was selected (${input.selection.checkpoint.checkpointId} → ${checkpoint.id}, ${input.selection.connectors.exportId} → ${exported.id}); start the restore again`,
        });
      }

      ctx.heartbeat({ phase: 'connectors' });
      const inventory = await readConnectorExport(deps, exported);
      const connectors = await storeConnectors(location, input.deployment, input.backupId, inventory, dataKey);

      // The checkpoint's index lines, as they are: they name blobs the checkpoints wrote, under the blobs' own keys.
      let objects = 0;
      let bytes = 0;
      const lines = async function* () {
        for await (const entry of checkpointEntries(deps, checkpoint)) {
          objects += 1;
          bytes += entry.size;
          if (objects % 5000 === 0) ctx.heartbeat({ phase: 'recordings index', entries: objects });
          yield jsonLine(entry);
        }
      };
      ctx.heartbeat({ phase: 'recordings index', entries: 0 });
      const recordingsIndex = await writeArtifact(location, backupKey(input.deployment, input.backupId, INDEX_ARTIFACT), Readable.from(lines()), dataKey, { signal });

      // Whatever happens from here, the instance goes: this attempt's, or one an earlier attempt left running when this
      // one fails before making its own.
      let snapshot: Snapshot | undefined;
      try {
        const scratch = await recoverScratchInstance(deps, { target: 'production', at: input.selection.at, scratchId, scratchRoot }, (details) => ctx.heartbeat({ ...details, scratchId }), { gapsRetryable: true });
        const postgres = { ...deployment.postgres, host: scratch.host, port: scratch.port };
        snapshot = await openSnapshot(postgres, password);
        const { db, dbParts, rowCounts } = await dumpSnapshot({
          ctx,
          snapshot,
          postgres,
          password,
          location,
          deployment: input.deployment,
          backupId: input.backupId,
          dataKey,
          settings: deps.config.backup.parallelDump,
        });
        faultPoint(DUMP_MOMENT_FAULT_POINTS.dumped);
        const num = snapshot.serverVersionNum;
        return {
          quiesce: { startedAt: at.toISOString(), endedAt: at.toISOString(), pauseMs: 0, recordingsPoint: checkpoint.manifest.coveredAt, databasePoint: momentPoint(input.selection.at) },
          postgres: { serverVersion: `${Math.floor(num / 10000)}.${num % 10000}`, database: deployment.postgres.database, rowCounts },
          db,
          dbParts,
          connectors,
          connectorCount: inventory.connectors.length,
          recordingsIndex,
          recordings: { objects, bytes },
          baseId: scratch.baseId,
          segments: scratch.segments,
        };
      } finally {
        await snapshot?.close().catch(() => undefined);
        await discardScratchDir(scratchPaths(scratchRoot, scratchId), deployment.postgres);
      }
    },
  };
}
