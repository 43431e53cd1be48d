// Retention: backups past the policy removed (manifests first), checkpoints and connector exports past the
// point-in-time window likewise, then every blob nothing remaining references: judged among the blobs the removed
// backups name against their retained neighbours' indexes, or by a full mark and sweep.
import { Context, activityInfo } from '@temporalio/activity';
import { listBackups, type CatalogEntry } from '../src/catalog/catalog';
import { CHECKPOINT_KIND, CONNECTOR_EXPORT_KIND, type PointKind } from '../src/catalog/checkpoint-manifest';
import { listPointIds, listPoints, pointIdTime, selectExpiredPoints } from '../src/catalog/point-in-time-catalog';
import { primaryLocation } from './backup-context';
import { activePins } from '../src/catalog/pins';
import { retainedNeighbours, selectExpired } from '../src/catalog/retention';
import { unwrapKey } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { readJsonLines } from '../src/catalog/json-lines';
import { readRecordingsIndex } from '../src/catalog/recordings-index';
import { backupPrefix, blobKey, blobsPrefix, manifestKey, parseBlobKey, type BackupLocation } from '../src/storage';
import { POINT_MANIFEST, sweepMarkerKey } from '../src/storage/layout';
import { sortUniqueToFile } from '../src/streams/external-sort';
import { SortedCursor } from '../src/streams/sorted-cursor';

export interface PruneResult {
  kept: number;
  removed: string[];
  /** Past the policy, but in use by a running restore, verify, drill or check: kept until its pin goes. */
  keptForPins: string[];
  /** Blob copies deleted, one per blob per location (a bounded sweep deletes by name, counting each location asked). */
  blobsRemoved: number;
  /** True when an unfinished checkpoint was found: no blob was swept this time (the next prune does it). */
  sweepDeferred: boolean;
  /** Recordings checkpoints past the point-in-time window, removed (the newest, and the newest before the window, stay). */
  checkpointsRemoved: number;
  /** Connector exports past the window, removed. */
  connectorExportsRemoved: number;
  /** Checkpoints that never committed (their run died and a later one took over), removed with what they wrote. */
  unfinishedCheckpointsRemoved: number;
}

/** An unfinished checkpoint this old is abandoned: every later run resumes only the newest unfinished one. */
const ABANDONED_AFTER_MS = 86_400_000;

/** Removes one id's folder in every location, the manifest first everywhere: from then on it does not exist. */
async function removePoint(locations: readonly BackupLocation[], kind: PointKind<unknown>, deployment: string, id: string): Promise<void> {
  for (const location of locations) await location.delete([kind.key(deployment, id, POINT_MANIFEST)]);
  for (const location of locations) {
    const keys: string[] = [];
    for await (const item of location.list(kind.folder(deployment, id))) keys.push(item.key);
    if (keys.length) await location.delete(keys);
  }
}

export function createPruneActivities(deps: Dependencies) {
  return {
    /**
     * Runs inside the backup workflow, after its commit, so no other backup of the deployment is writing blobs
     * while unreferenced ones are swept (the workflow id is the lock).
     */
    async prune(input: { deployment: string }): Promise<PruneResult> {
      const ctx = Context.current();
      const locations = deps.locations();
      const catalog = await listBackups(locations, input.deployment, { strict: true, keyRing: deps.keyRing() });
      // Pins are read after the catalog: a pin written meanwhile is seen, and its writer re-checks the manifest after writing.
      const pins = await activePins(locations, input.deployment, deps.now());
      const selection = selectExpired(catalog, deps.config.retention, deps.now(), new Set(pins.keys()));
      const keptForPins = [...selection.keptForPins];
      const expired: typeof selection.expired = [];

      // The point-in-time window: checkpoints and connector exports past it go, manifests first, as backups do.
      const windowDays = deps.config.pointInTime.windowDays;
      const checkpoints = await listPoints(locations, CHECKPOINT_KIND, input.deployment, deps.keyRing(), { strict: true });
      const expiredCheckpoints = selectExpiredPoints(checkpoints, CHECKPOINT_KIND, windowDays, deps.now());
      for (const entry of expiredCheckpoints) {
        await removePoint(locations, CHECKPOINT_KIND as PointKind<unknown>, input.deployment, entry.id);
        ctx.heartbeat({ phase: 'window', removed: entry.id });
      }
      const keptCheckpoints = checkpoints.filter((e) => !expiredCheckpoints.includes(e));
      const exports = await listPoints(locations, CONNECTOR_EXPORT_KIND, input.deployment, deps.keyRing(), { strict: true });
      const expiredExports = selectExpiredPoints(exports, CONNECTOR_EXPORT_KIND, windowDays, deps.now());
      for (const entry of expiredExports) {
        await removePoint(locations, CONNECTOR_EXPORT_KIND as PointKind<unknown>, input.deployment, entry.id);
        ctx.heartbeat({ phase: 'window', removed: entry.id });
      }
      // A checkpoint or export that never committed and that no run took up for a day is abandoned; a checkpoint's
      // blobs go in the sweep.
      const abandonedOf = async (kind: PointKind<unknown>): Promise<Set<string>> => {
        const ids = new Set<string>();
        for (const location of locations) {
          for (const id of (await listPointIds(location, kind, input.deployment)).unfinished) {
            if (deps.now().getTime() - pointIdTime(id) > ABANDONED_AFTER_MS) ids.add(id);
          }
        }
        for (const id of ids) await removePoint(locations, kind, input.deployment, id);
        return ids;
      };
      const abandoned = await abandonedOf(CHECKPOINT_KIND as PointKind<unknown>);
      await abandonedOf(CONNECTOR_EXPORT_KIND as PointKind<unknown>);
      const points = { checkpointsRemoved: expiredCheckpoints.length, connectorExportsRemoved: expiredExports.length, unfinishedCheckpointsRemoved: abandoned.size };
      const primary = primaryLocation(deps);
      const pendingCheckpoints = (await listPointIds(primary, CHECKPOINT_KIND as PointKind<unknown>, input.deployment)).pending.filter((id) => !abandoned.has(id));

      // Bounded: the blobs the expired backups name, less those their retained neighbours name, are deleted by key,
      // with no index but those read and no location listed. Only where no checkpoint names blobs: a checkpoint shares
      // the blobs of the backup it built on, a link the neighbours do not follow. A retry takes the full mark and sweep
      // instead: blobs of a backup an earlier attempt removed are no longer named by any manifest, and only a listing
      // finds them.
      const noCheckpoints = checkpoints.length === 0 && pendingCheckpoints.length === 0 && abandoned.size === 0;
      const neighbours = selection.expired.length ? retainedNeighbours(catalog, selection.expired) : undefined;
      const bounded = neighbours !== undefined && activityInfo().attempt === 1 && noCheckpoints;

      async function* removeExpired(): AsyncGenerator<string> {
        for (const entry of selection.expired) {
          // Pins read again right before each removal: a restore or drill that pinned this backup since the first
          // reading keeps it (the window left is the one between this reading and the manifest's deletion).
          if ((await activePins(locations, input.deployment, deps.now())).has(entry.backupId)) {
            keptForPins.push(entry.backupId);
            continue;
          }
          expired.push(entry);
          // The manifest goes first everywhere: from then on the backup does not exist, whatever else remains.
          for (const location of locations) await location.delete([manifestKey(input.deployment, entry.backupId)]);
          if (bounded) yield* blobNames(entry, 'candidates');
          for (const location of locations) {
            const keys: string[] = [];
            for await (const item of location.list(backupPrefix(input.deployment, entry.backupId))) keys.push(item.key);
            if (keys.length) await location.delete(keys);
          }
          ctx.heartbeat({ removed: entry.backupId });
        }
      }

      let marked = 0;
      async function* blobNames(entry: CatalogEntry, phase: 'mark' | 'candidates'): AsyncGenerator<string> {
        const holder = locations.find((l) => entry.locations.includes(l.name))!;
        const dataKey = unwrapKey(entry.manifest.encryption.dataKey, deps.keyRing());
        for await (const line of readRecordingsIndex(holder, entry.manifest.artifacts.recordingsIndex, dataKey)) {
          marked += 1;
          if (marked % 5000 === 0) ctx.heartbeat({ phase, reading: entry.backupId, marked });
          yield line.blob;
        }
        ctx.heartbeat({ phase, reading: entry.backupId, marked });
      }

      if (bounded) {
        const candidates = await sortUniqueToFile(removeExpired(), { workDir: deps.config.backup.workDir, onProgress: (merged) => ctx.heartbeat({ phase: 'sort', merged }) });
        try {
          if (expired.length === 0) return { kept: catalog.length, removed: [], keptForPins, blobsRemoved: 0, sweepDeferred: false, ...points };
          // A backup pinned since the selection is retained after all: it is read too.
          const readers = [...neighbours, ...selection.expired.filter((e) => !expired.includes(e))];
          async function* referencedByNeighbours(): AsyncGenerator<string> {
            for (const entry of readers) yield* blobNames(entry, 'mark');
          }
          const referenced = await sortUniqueToFile(referencedByNeighbours(), { workDir: deps.config.backup.workDir, onProgress: (merged) => ctx.heartbeat({ phase: 'sort', merged }) });
          let blobsRemoved = 0;
          try {
            // Strict: should either side turn out unsorted, the sweep stops rather than delete what it cannot judge.
            const cursor = new SortedCursor(referenced.lines(), (name) => name, true);
            let batch: string[] = [];
            let judged = 0;
            const flush = async () => {
              for (const location of locations) await location.delete(batch);
              blobsRemoved += batch.length * locations.length;
              batch = [];
              ctx.heartbeat({ phase: 'sweep', judged, blobsRemoved });
            };
            for await (const name of candidates.lines()) {
              judged += 1;
              if (judged % 5000 === 0) ctx.heartbeat({ phase: 'sweep', judged, blobsRemoved });
              if ((await cursor.seek(name)) !== undefined) continue;
              batch.push(blobKey(input.deployment, name));
              if (batch.length === 500) await flush();
            }
            if (batch.length) await flush();
            await cursor.close();
          } finally {
            await referenced.dispose();
          }
          return { kept: catalog.length - expired.length, removed: expired.map((e) => e.backupId), keptForPins, blobsRemoved, sweepDeferred: false, ...points };
        } finally {
          await candidates.dispose();
        }
      }

      for await (const _ of removeExpired()) {
        // The full path reads no candidates: removing is all this loop does.
      }
      const kept = catalog.filter((e) => !expired.includes(e));
      // Nothing went: every blob a committed backup or checkpoint names stays, so there is nothing to mark or sweep.
      // Reading every index and listing every location here would make each backup's cost follow what is held. (Blobs
      // a failed backup could not clean up wait for a full sweep; the scheduled `check` counts them as orphans.)
      if (expired.length === 0 && expiredCheckpoints.length === 0 && abandoned.size === 0) {
        return { kept: kept.length, removed: [], keptForPins, blobsRemoved: 0, sweepDeferred: false, ...points };
      }

      // The sweep and a checkpoint exclude one another through storage: the marker first, then a look for unfinished
      // checkpoints (whose blobs no manifest names yet); a checkpoint writes its data key first, then looks for the
      // marker. Whichever comes second sees the other.
      const marker = sweepMarkerKey(input.deployment);
      await primary.put(marker, Buffer.from(JSON.stringify({ since: deps.now().toISOString() })));
      const unfinished = (await listPointIds(primary, CHECKPOINT_KIND as PointKind<unknown>, input.deployment)).pending.filter((id) => !abandoned.has(id));
      if (unfinished.length > 0) {
        await primary.delete([marker]);
        ctx.log.info(`blob sweep of ${input.deployment} deferred to the next prune: checkpoint ${unfinished.at(-1)} is unfinished`);
        return { kept: kept.length, removed: expired.map((e) => e.backupId), keptForPins, blobsRemoved: 0, sweepDeferred: true, ...points };
      }

      // Mark: the blobs the remaining backups and checkpoints reference, sorted on disk (memory stays flat in the
      // number of recordings). Sweep: a merge of that list with each location's blob listing (both in key order); every
      // listed blob the list lacks goes.
      async function* referencedNames(): AsyncGenerator<string> {
        for (const entry of kept) yield* blobNames(entry, 'mark');
        // A checkpoint shares blobs with the backups and the checkpoints before it: what it names stays. Its index is
        // its previous checkpoint's blobs plus those it added, so along a chain of kept checkpoints one index and each
        // one's added blobs mark them all (frequent checkpoints cost the mark what changed, not their number).
        const keptIds = new Set(keptCheckpoints.map((e) => e.id));
        for (const entry of keptCheckpoints) {
          const holder = locations.find((l) => entry.locations.includes(l.name))!;
          const dataKey = unwrapKey(entry.manifest.encryption.dataKey, deps.keyRing());
          const previous = entry.manifest.previous;
          const chained = previous?.kind === 'checkpoint' && keptIds.has(previous.id);
          const names = chained
            ? readJsonLines<string>(holder, entry.manifest.artifacts.addedBlobs, dataKey)
            : (async function* () {
                for await (const line of readRecordingsIndex(holder, entry.manifest.artifacts.recordingsIndex, dataKey)) yield line.blob;
              })();
          for await (const name of names) {
            marked += 1;
            if (marked % 5000 === 0) ctx.heartbeat({ phase: 'mark', marking: entry.id, marked });
            yield name;
          }
          ctx.heartbeat({ phase: 'mark', marking: entry.id, marked });
        }
      }
      let referenced: Awaited<ReturnType<typeof sortUniqueToFile>>;
      try {
        referenced = await sortUniqueToFile(referencedNames(), { workDir: deps.config.backup.workDir, onProgress: (merged) => ctx.heartbeat({ phase: 'sort', merged }) });
      } catch (err) {
        await primary.delete([marker]).catch(() => undefined);
        throw err;
      }
      let blobsRemoved = 0;
      try {
        const prefix = blobsPrefix(input.deployment);
        for (const location of locations) {
          // Strict: should either side turn out unsorted, the sweep stops rather than delete what it cannot judge.
          const cursor = new SortedCursor(referenced.lines(), (name) => name, true);
          let batch: string[] = [];
          let listed = 0;
          const flush = async () => {
            await location.delete(batch);
            blobsRemoved += batch.length;
            batch = [];
            ctx.heartbeat({ phase: 'sweep', location: location.name, listed, blobsRemoved });
          };
          for await (const item of location.list(prefix)) {
            listed += 1;
            if (listed % 5000 === 0) ctx.heartbeat({ phase: 'sweep', location: location.name, listed, blobsRemoved });
            const name = parseBlobKey(input.deployment, item.key);
            // Anything under blobs/ that is not a blob name (a driver's temporary file) is not ours to judge.
            if (name === undefined || (await cursor.seek(name)) !== undefined) continue;
            batch.push(item.key);
            if (batch.length === 500) await flush();
          }
          if (batch.length) await flush();
          await cursor.close();
        }
      } finally {
        await referenced.dispose();
        await primary.delete([marker]);
      }
      return {
        kept: kept.length,
        removed: expired.map((e) => e.backupId),
        keptForPins,
        blobsRemoved,
        sweepDeferred: false,
        checkpointsRemoved: expiredCheckpoints.length,
        connectorExportsRemoved: expiredExports.length,
        unfinishedCheckpointsRemoved: abandoned.size,
      };
    },
  };
}
