// Orphan and missing blobs at one location: the names every backup's and every recordings checkpoint's index
// references, sorted on disk, merged with the location's sorted listing of blobs, so memory stays flat whatever the
// number of recordings.
import { Context } from '@temporalio/activity';
import { CHECKPOINT_KIND, type CheckpointManifest, type PointKind } from '../src/catalog/checkpoint-manifest';
import { readJsonLines } from '../src/catalog/json-lines';
import { listPointIds, readPointManifest } from '../src/catalog/point-in-time-catalog';
import { readRecordingsIndex } from '../src/catalog/recordings-index';
import { unwrapKey } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { blobsPrefix, parseBlobKey, type BackupLocation } from '../src/storage';
import { sortUniqueToFile } from '../src/streams/external-sort';
import { compareKeys } from '../src/streams/sorted-cursor';
import type { OrphanCheckResult } from '../workflows/check-types';
import { locationByName } from './backup-context';
import { readableIndexOf } from './check-backup';

/** Orphan and missing names kept in the result; the counts cover every one. */
const NAMES_KEPT = 20;

export function createOrphanCheckActivities(deps: Dependencies) {
  return {
    /**
     * Read-only, so a retry simply starts again. Blobs a running backup is writing are not yet referenced by any
     * manifest and show up as orphans: they are reported, never deleted (prune removes real orphans).
     */
    async findOrphans(input: { deployment: string; location: string; backupIds: string[] }): Promise<OrphanCheckResult> {
      const ctx = Context.current();
      const location = locationByName(deps, input.location);
      const result: OrphanCheckResult = { location: location.name, blobsListed: 0, referenced: 0, orphanCount: 0, orphans: [], missingCount: 0, missing: [] };
      // Names only (no key) reach the disk, sorted in runs and merged by the same external sort retention uses.
      let written = 0;
      let skipped: string | undefined;
      async function* referencedNames(): AsyncGenerator<string> {
        for (const backupId of input.backupIds) {
          const readable = await readableIndexOf(deps, input.deployment, backupId);
          if (!readable) {
            skipped = `the recordings index of backup ${backupId} verifies at no location, so what is an orphan cannot be told`;
            return;
          }
          const dataKey = unwrapKey(readable.manifest.encryption.dataKey, deps.keyRing());
          for await (const entry of readRecordingsIndex(readable.location, readable.manifest.artifacts.recordingsIndex, dataKey)) {
            if (++written % 5000 === 0) ctx.heartbeat({ phase: 'references', written });
            yield entry.blob;
          }
        }
        // The checkpoints committed here name blobs too. Along a chain, one index and each later one's added blobs.
        const here = new Map<string, CheckpointManifest>();
        for (const id of (await listPointIds(location, CHECKPOINT_KIND as PointKind<unknown>, input.deployment)).committed) {
          try {
            const manifest = await readPointManifest(location, CHECKPOINT_KIND, input.deployment, id, deps.keyRing());
            if (manifest) here.set(id, manifest);
          } catch (err) {
            skipped = `the manifest of recordings checkpoint ${id} does not read here (${(err as Error).message}), so what is an orphan cannot be told`;
            return;
          }
        }
        for (const manifest of here.values()) {
          const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
          const previous = manifest.previous;
          const namesAt = (at: BackupLocation) =>
            previous?.kind === 'checkpoint' && here.has(previous.id)
              ? readJsonLines<string>(at, manifest.artifacts.addedBlobs, dataKey)
              : (async function* () {
                  for await (const entry of readRecordingsIndex(at, manifest.artifacts.recordingsIndex, dataKey)) yield entry.blob;
                })();
          // Read here, else (missing or damaged here: the point-in-time check names that) where it reads whole. Names
          // a failed read yielded before failing are repeated by the next: the sort keeps each once.
          let read = false;
          const failures: string[] = [];
          for (const at of [location, ...deps.locations().filter((l) => l.name !== location.name)]) {
            try {
              for await (const name of namesAt(at)) {
                if (++written % 5000 === 0) ctx.heartbeat({ phase: 'references', written });
                yield name;
              }
              read = true;
              break;
            } catch (err) {
              failures.push(`${at.name}: ${(err as Error).message}`);
            }
          }
          if (!read) {
            skipped = `what recordings checkpoint ${manifest.checkpointId} names reads at no location (${failures.join('; ')}), so what is an orphan cannot be told`;
            return;
          }
        }
      }
      const sorted = await sortUniqueToFile(referencedNames(), { workDir: deps.config.backup.workDir, onProgress: (merged) => ctx.heartbeat({ phase: 'sort', merged }) });
      try {
        if (skipped) return { ...result, skipped };
        const references = sorted.lines()[Symbol.asyncIterator]();
        const nextReference = async () => {
          const next = await references.next();
          if (next.done) return undefined;
          result.referenced += 1;
          return next.value;
        };
        const missing = (name: string) => {
          result.missingCount += 1;
          if (result.missing.length < NAMES_KEPT) result.missing.push(name);
        };
        let reference = await nextReference();
        for await (const item of location.list(blobsPrefix(input.deployment))) {
          const name = parseBlobKey(input.deployment, item.key);
          if (name === undefined) continue;
          result.blobsListed += 1;
          if (result.blobsListed % 5000 === 0) ctx.heartbeat({ phase: 'merge', listed: result.blobsListed });
          while (reference !== undefined && compareKeys(reference, name) < 0) {
            missing(reference);
            reference = await nextReference();
          }
          if (reference === name) reference = await nextReference();
          else {
            result.orphanCount += 1;
            if (result.orphans.length < NAMES_KEPT) result.orphans.push(name);
          }
        }
        while (reference !== undefined) {
          missing(reference);
          reference = await nextReference();
        }
        return result;
      } finally {
        await sorted.dispose();
      }
    },
  };
}
