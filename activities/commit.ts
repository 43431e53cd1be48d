// Preparing a backup (locations, data key, the backup it builds on), committing it (manifest last, everywhere),
// and discarding a failed one so the catalog never shows it.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { listBackups, writeManifest } from '../src/catalog/catalog';
import { ensureDataKey, loadDataKey, readWrappedKey } from '../src/catalog/data-key';
import type { Artifact, Manifest } from '../src/catalog/manifest';
import { MANIFEST_FORMAT } from '../src/catalog/manifest';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupPrefix, blobKey, manifestKey } from '../src/storage';
import type { PrepareResult } from '../workflows/backup-types';
import { TaskPool, backupDataKey, blobIdOf, blobSealedWith, deriveBlobKey, primaryLocation, type ListingEntry } from './backup-context';
import { loadIndexKeys, readJsonLines } from './sync';

export type ManifestDraft = Omit<Manifest, 'format' | 'encryption' | 'committedAt'>;

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
      const [previous] = await listBackups(locations, input.deployment);
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
      const manifest: Manifest = { format: MANIFEST_FORMAT, ...input.draft, committedAt, encryption: { cipher: 'AES-256-GCM', framing: 'VPB1', dataKey } };
      for (const location of deps.locations()) await writeManifest(location, deployment, manifest, deps.keyRing());
      return { committedAt, locations: deps.locations().map((l) => l.name) };
    },

    /**
     * Compensation: manifests first (so no location ever shows a backup whose parts are going), then the blobs this
     * backup wrote (recognised by their key check; shared blobs of committed backups are kept), then the rest.
     */
    async discardBackup(input: { deployment: string; backupId: string; previousBackupId?: string; listing?: Artifact }): Promise<{ deletedObjects: number }> {
      const ctx = Context.current();
      const locations = deps.locations();
      const key = manifestKey(input.deployment, input.backupId);
      for (const location of locations) await location.delete([key]);
      let deleted = 0;

      if (input.listing) {
        let dataKey: Buffer | undefined;
        try {
          dataKey = await backupDataKey(deps, input.deployment, input.backupId);
        } catch {
          dataKey = await loadDataKey(locations, input.deployment, input.backupId, deps.keyRing()).catch(() => undefined);
        }
        const listingReadable = dataKey && (await primaryLocation(deps).stat(input.listing.key));
        if (dataKey && listingReadable) {
          const previous = input.previousBackupId ? await loadIndexKeys(deps, input.deployment, input.previousBackupId) : new Map<string, string>();
          const pool = new TaskPool(16);
          for await (const entry of readJsonLines<ListingEntry>(primaryLocation(deps), input.listing, dataKey)) {
            const id = blobIdOf(entry);
            if (previous.has(id)) continue;
            const sealKey = deriveBlobKey(dataKey, id);
            await pool.run(async () => {
              for (const location of locations) {
                const k = blobKey(input.deployment, id);
                if (await blobSealedWith(location, k, sealKey)) {
                  await location.delete([k]);
                  deleted += 1;
                }
              }
              ctx.heartbeat({ deleted });
            });
          }
          await pool.drain();
        }
      }

      for (const location of locations) {
        const keys: string[] = [];
        for await (const item of location.list(backupPrefix(input.deployment, input.backupId))) keys.push(item.key);
        if (keys.length) await location.delete(keys);
        deleted += keys.length;
      }
      return { deletedObjects: deleted };
    },
  };
}
