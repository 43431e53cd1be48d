// Seed step 6: copy every artifact and every blob missing at another location, then re-verify checksums there.
import { Context, activityInfo } from '@temporalio/activity';
import { Meter } from '../src/catalog/artifacts';
import { DATA_KEY_ARTIFACT } from '../src/catalog/data-key';
import type { Artifact } from '../src/catalog/manifest';
import { encryptedSize } from '../src/crypto/frame-format';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupKey, blobKey, type BackupLocation } from '../src/storage';
import type { ReplicateResult } from '../workflows/backup-types';
import { TaskPool, backupDataKey, locationByName, primaryLocation, type IndexEntry } from './backup-context';
import { readJsonLines } from './sync';
import { verifyChecksums } from './verify';

async function copyObject(from: BackupLocation, to: BackupLocation, key: string, size?: number, onBytes?: () => void): Promise<number> {
  const meter = new Meter(onBytes, false);
  const source = await from.get(key);
  const body = source.pipe(meter);
  source.on('error', (err) => body.destroy(err));
  await to.put(key, body, size);
  return meter.bytes;
}

interface ReplicateCheckpoint {
  blobsDone: number;
  blobsCopied: number;
  blobsPresent: number;
  bytesCopied: number;
}

export function createReplicateActivities(deps: Dependencies) {
  return {
    async replicate(input: { deployment: string; backupId: string; to: string; artifacts: { db: Artifact; connectors: Artifact; recordingsIndex: Artifact } }): Promise<ReplicateResult> {
      const ctx = Context.current();
      const from = primaryLocation(deps);
      const to = locationByName(deps, input.to);
      await to.ensureReady();
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      const state: ReplicateCheckpoint = (activityInfo().heartbeatDetails as ReplicateCheckpoint | undefined) ?? { blobsDone: 0, blobsCopied: 0, blobsPresent: 0, bytesCopied: 0 };

      const beat = () => ctx.heartbeat({ ...state });
      // Blobs first: a location never holds an index that points at blobs it lacks.
      const done = new Set<number>();
      const pool = new TaskPool(deps.config.backup.concurrency);
      let seq = -1;
      for await (const entry of readJsonLines<IndexEntry>(from, input.artifacts.recordingsIndex, dataKey)) {
        seq += 1;
        if (seq < state.blobsDone) continue;
        const mine = seq;
        await pool.run(async () => {
          const key = blobKey(input.deployment, entry.b);
          const size = encryptedSize(entry.s);
          const there = await to.stat(key);
          if (there && there.size === size) state.blobsPresent += 1;
          else {
            state.bytesCopied += await copyObject(from, to, key, size, beat);
            state.blobsCopied += 1;
          }
          done.add(mine);
          while (done.delete(state.blobsDone)) state.blobsDone += 1;
          ctx.heartbeat({ ...state });
        });
      }
      await pool.drain();

      const keys = [...Object.values(input.artifacts).map((a) => a.key), backupKey(input.deployment, input.backupId, DATA_KEY_ARTIFACT)];
      for (const key of keys) {
        state.bytesCopied += await copyObject(from, to, key, undefined, beat);
        beat();
      }
      await verifyChecksums(to, input.artifacts, beat);
      return { location: to.name, artifacts: keys.length, blobsCopied: state.blobsCopied, blobsPresent: state.blobsPresent, bytesCopied: state.bytesCopied };
    },
  };
}
