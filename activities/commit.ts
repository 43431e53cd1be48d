// Preparing a backup (locations, data key, the backup it builds on), committing it (manifest last, everywhere),
// and discarding a failed one so the catalog never shows it.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { listBackups, writeManifest } from '../src/catalog/catalog';
import { isPointInTimeBackup } from '../src/catalog/retention';
import { ensureDataKey, loadDataKey, readWrappedKey } from '../src/catalog/data-key';
import type { Artifact, Manifest } from '../src/catalog/manifest';
import { MANIFEST_FORMAT, MANIFEST_FORMAT_PARTS } from '../src/catalog/manifest';
import { databaseParts } from '../src/catalog/database-parts';
import { ownBlobOf } from '../src/catalog/recording-blobs';
import { readRecordingsListing } from '../src/catalog/recordings-index';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupPrefix, blobKey, manifestKey, type BackupLocation } from '../src/storage';
import type { PrepareResult } from '../workflows/backup-types';
import { backupDataKey, primaryLocation } from './backup-context';

export type ManifestDraft = Omit<Manifest, 'format' | 'encryption' | 'committedAt' | 'authentication'>;

/** Objects deleted per request while a failed backup is discarded. */
const DELETE_BATCH = 500;

export function createCommitActivities(deps: Dependencies) {
  return {
    async prepareBackup(input: { deployment: string; backupId: string }): Promise<PrepareResult> {
      const locations = deps.locations();
      const regions = new Set(locations.map((l) => l.region));
      if (regions.size < 2) {
        throw ApplicationFailure.create({
          type: 'LocationsInvalid',
          nonRetryable: true,
          message: `a complete backup needs locations in at least two regions; the configuration has ${locations.length} location(s) in ${regions.size} region(s) (${[...regions].join(', ') || 'none'}): add a location with another "region" to "locations"`,
        });
      }
      for (const location of locations) await location.ensureReady();
      await ensureDataKey(primaryLocation(deps), input.deployment, input.backupId, deps.keyRing());
      // Only an authentic manifest can be built on: its index names the blobs and keys this backup will share. A backup
      // made from a moment holds the bucket as it was then, not as the last backup saw it: the series goes on past it.
      const previous = (await listBackups(locations, input.deployment, { keyRing: deps.keyRing() })).find((entry) => !isPointInTimeBackup(entry));
      return {
        primary: locations[0]!.name,
        locations: locations.map((l) => ({ name: l.name, region: l.region })),
        ...(previous ? { previousBackupId: previous.backupId } : {}),
      };
    },

    /** Writes manifest.json in every location: the commit point. */
    async commitBackup(input: { draft: ManifestDraft }): Promise<{ committedAt: string; locations: string[] }> {
      const { deployment, backupId } = input.draft;
      const dataKey = await readWrappedKey(primaryLocation(deps), deployment, backupId);
      if (!dataKey) throw ApplicationFailure.create({ type: 'BackupCorrupt', message: `the data key of backup ${backupId} is missing from the primary location`, nonRetryable: true });
      const committedAt = deps.now().toISOString();
      const format = databaseParts(input.draft.artifacts).length ? MANIFEST_FORMAT_PARTS : MANIFEST_FORMAT;
      const manifest: Omit<Manifest, 'authentication'> = { format, ...input.draft, committedAt, encryption: { cipher: 'AES-256-GCM', framing: 'VPB1', dataKey } };
      for (const location of deps.locations()) await writeManifest(location, manifest, deps.keyRing());
      // The copy's shards left their index parts at the primary; the assembled index replaces them.
      const primary = primaryLocation(deps);
      const parts: string[] = [];
      for await (const item of primary.list(backupPrefix(deployment, backupId))) if (/\/recordings\.index\.part-\d+-of-\d+\.enc$/.test(item.key)) parts.push(item.key);
      if (parts.length) await primary.delete(parts);
      return { committedAt, locations: deps.locations().map((l) => l.name) };
    },

    /**
     * Compensation: manifests first (so no location ever shows a backup whose parts are going), then the blobs this
     * backup sealed under its own key (their names bind that key, so no committed backup can name one of them), then
     * the rest of its folder. Blobs it shares with earlier backups have other names and are never touched.
     */
    async discardBackup(input: { deployment: string; backupId: string; listing?: Artifact }): Promise<{ deletedObjects: number }> {
      const ctx = Context.current();
      const locations = deps.locations();
      // A location that cannot be cleaned (unreachable, read-only) does not stop the others from being cleaned; the
      // activity fails at the end naming it, so a retry finishes the job there.
      const problems = new Map<string, string>();
      const at = async (location: BackupLocation, work: () => Promise<void>) => {
        if (problems.has(location.name)) return;
        try {
          await work();
        } catch (err) {
          problems.set(location.name, (err as Error).message);
        }
      };
      for (const location of locations) await at(location, () => location.delete([manifestKey(input.deployment, input.backupId)]));
      let deleted = 0;
      const beat = (phase: string) => ctx.heartbeat({ phase, deleted });

      if (input.listing) {
        let dataKey: Buffer | undefined;
        try {
          dataKey = await backupDataKey(deps, input.deployment, input.backupId);
        } catch {
          dataKey = await loadDataKey(locations, input.deployment, input.backupId, deps.keyRing()).catch(() => undefined);
        }
        const listingReadable = dataKey && (await primaryLocation(deps).stat(input.listing.key));
        if (dataKey && listingReadable) {
          let batch: string[] = [];
          const flush = async () => {
            // The copy writes this backup's own blobs to every location at once: each may hold some.
            for (const location of locations) await at(location, () => location.delete(batch));
            deleted += batch.length;
            batch = [];
            beat('blobs');
          };
          for await (const entry of readRecordingsListing(primaryLocation(deps), input.listing, dataKey)) {
            batch.push(blobKey(input.deployment, ownBlobOf(dataKey, entry).blob));
            if (batch.length >= DELETE_BATCH) await flush();
          }
          if (batch.length) await flush();
        }
      }

      for (const location of locations) {
        await at(location, async () => {
          const keys: string[] = [];
          for await (const item of location.list(backupPrefix(input.deployment, input.backupId))) keys.push(item.key);
          if (keys.length) await location.delete(keys);
          deleted += keys.length;
        });
        beat('artifacts');
      }
      if (problems.size) {
        throw new Error(`backup ${input.backupId} was discarded except at ${[...problems].map(([name, problem]) => `location "${name}" (${problem})`).join('; ')}; a retry finishes there`);
      }
      return { deletedObjects: deleted };
    },
  };
}
