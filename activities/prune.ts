// Retention: backups past the policy removed (manifests first), then every blob no remaining backup references: judged
// among the blobs the removed backups name, against their retained neighbours' indexes, or by a full mark and sweep.
import { Context, activityInfo } from '@temporalio/activity';
import { listBackups, type CatalogEntry } from '../src/catalog/catalog';
import { activePins } from '../src/catalog/pins';
import { retainedNeighbours, selectExpired } from '../src/catalog/retention';
import { unwrapKey } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { readRecordingsIndex } from '../src/catalog/recordings-index';
import { backupPrefix, blobKey, blobsPrefix, manifestKey, parseBlobKey } from '../src/storage';
import { sortUniqueToFile } from '../src/streams/external-sort';
import { SortedCursor } from '../src/streams/sorted-cursor';

export interface PruneResult {
  kept: number;
  removed: string[];
  /** Past the policy, but in use by a running restore, verify, drill or check: kept until its pin goes. */
  keptForPins: string[];
  /** Blob copies deleted, one per blob per location (a bounded sweep deletes by name, counting each location asked). */
  blobsRemoved: number;
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
      // Bounded: the blobs the expired backups name, less those their retained neighbours name, are deleted by key,
      // with no index but those read and no location listed. A retry takes the full mark and sweep instead: blobs of
      // a backup an earlier attempt removed are no longer named by any manifest, and only a listing finds them.
      const neighbours = selection.expired.length ? retainedNeighbours(catalog, selection.expired) : undefined;
      const bounded = neighbours !== undefined && activityInfo().attempt === 1;

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
          if (expired.length === 0) return { kept: catalog.length, removed: [], keptForPins, blobsRemoved: 0 };
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
          return { kept: catalog.length - expired.length, removed: expired.map((e) => e.backupId), keptForPins, blobsRemoved };
        } finally {
          await candidates.dispose();
        }
      }

      for await (const _ of removeExpired()) {
        // The full path reads no candidates: removing is all this loop does.
      }
      const kept = catalog.filter((e) => !expired.includes(e));
      // Nothing expired: every blob a committed backup names stays, so there is nothing to mark or sweep. Reading every
      // index and listing every location here would make each backup's cost follow what is held. (Blobs a failed
      // backup could not clean up wait for a full sweep; the scheduled `check` counts them as orphans.)
      if (expired.length === 0) return { kept: kept.length, removed: [], keptForPins, blobsRemoved: 0 };

      // Mark: the blobs the remaining backups reference, sorted on disk (memory stays flat in the number of
      // recordings). Sweep: a merge of that list with each location's blob listing (both in key order); every listed
      // blob the list lacks goes.
      async function* referencedNames(): AsyncGenerator<string> {
        for (const entry of kept) yield* blobNames(entry, 'mark');
      }
      const referenced = await sortUniqueToFile(referencedNames(), { workDir: deps.config.backup.workDir, onProgress: (merged) => ctx.heartbeat({ phase: 'sort', merged }) });
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
      }
      return { kept: kept.length, removed: expired.map((e) => e.backupId), keptForPins, blobsRemoved };
    },
  };
}
