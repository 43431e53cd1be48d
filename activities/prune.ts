// Retention: backups past the policy removed (manifests first), then every blob no remaining backup references.
import { Context } from '@temporalio/activity';
import { listBackups } from '../src/catalog/catalog';
import { activePins } from '../src/catalog/pins';
import { selectExpired } from '../src/catalog/retention';
import { unwrapKey } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupPrefix, blobsPrefix, manifestKey } from '../src/storage';
import type { IndexEntry } from './backup-context';
import { readJsonLines } from './sync';

export interface PruneResult {
  kept: number;
  removed: string[];
  /** Past the policy, but in use by a running restore, verify, drill or check: kept until its pin goes. */
  keptForPins: string[];
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
      const catalog = await listBackups(locations, input.deployment, { strict: true });
      // Pins are read after the catalog: a pin written meanwhile is seen, and its writer re-checks the manifest after writing.
      const pins = await activePins(locations, input.deployment, deps.now());
      const { expired, keptForPins } = selectExpired(catalog, deps.config.retention, deps.now(), new Set(pins.keys()));
      const kept = catalog.filter((e) => !expired.includes(e));

      for (const entry of expired) {
        // The manifest goes first everywhere: from then on the backup does not exist, whatever else remains.
        for (const location of locations) await location.delete([manifestKey(input.deployment, entry.backupId)]);
        for (const location of locations) {
          const keys: string[] = [];
          for await (const item of location.list(backupPrefix(input.deployment, entry.backupId))) keys.push(item.key);
          if (keys.length) await location.delete(keys);
        }
        ctx.heartbeat({ removed: entry.backupId });
      }

      // Mark: the blobs the remaining backups reference. Sweep: every other blob, in every location.
      const referenced = new Set<string>();
      for (const entry of kept) {
        const holder = locations.find((l) => entry.locations.includes(l.name))!;
        const dataKey = unwrapKey(entry.manifest.encryption.dataKey, deps.keyRing());
        for await (const line of readJsonLines<IndexEntry>(holder, entry.manifest.artifacts.recordingsIndex, dataKey)) referenced.add(line.b);
        ctx.heartbeat({ marking: entry.backupId, referenced: referenced.size });
      }
      let blobsRemoved = 0;
      const prefix = blobsPrefix(input.deployment);
      for (const location of locations) {
        let batch: string[] = [];
        for await (const item of location.list(prefix)) {
          if (referenced.has(item.key.slice(item.key.lastIndexOf('/') + 1))) continue;
          batch.push(item.key);
          if (batch.length === 500) {
            await location.delete(batch);
            blobsRemoved += batch.length;
            batch = [];
            ctx.heartbeat({ blobsRemoved });
          }
        }
        if (batch.length) await location.delete(batch);
        blobsRemoved += batch.length;
      }
      return { kept: kept.length, removed: expired.map((e) => e.backupId), keptForPins, blobsRemoved };
    },
  };
}
