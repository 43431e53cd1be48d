// Seed steps 3 and 5a: list the recordings at the consistent point, then copy only what no earlier backup holds,
// concurrently, encrypted per blob, resumable after a crash without copying a finished object again.
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { Context, activityInfo } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import { openArtifact, writeArtifact, Meter } from '../src/catalog/artifacts';
import { readManifest } from '../src/catalog/catalog';
import type { Artifact } from '../src/catalog/manifest';
import { createEncryptStream, unwrapKey } from '../src/crypto';
import { encryptedSize } from '../src/crypto/frame-format';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupKey, blobKey, type BackupLocation } from '../src/storage';
import type { RecordingsSnapshot, SyncResult } from '../workflows/backup-types';
import { CLOCK_MARKER } from './dump';
import {
  TaskPool,
  backupDataKey,
  blobIdOf,
  blobSealedWith,
  deriveBlobKey,
  primaryLocation,
  type IndexEntry,
  type ListingEntry,
} from './backup-context';

export const LISTING_ARTIFACT = 'recordings.listing.enc';
export const INDEX_ARTIFACT = 'recordings.index.enc';

/** Lines of a JSON-lines artifact, decrypted and checked, one at a time (flat memory whatever the count). */
export async function* readJsonLines<T>(location: BackupLocation, artifact: Artifact, dataKey: Buffer): AsyncGenerator<T> {
  const stream = await openArtifact(location, artifact, dataKey);
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.length > 0) yield JSON.parse(line) as T;
  }
}

/** blob id -> blob key of the backup a new one builds on: unchanged recordings are shared, not copied. */
export async function loadIndexKeys(deps: Dependencies, deployment: string, backupId: string): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  // The first location holding a readable manifest of that backup.
  for (const location of deps.locations()) {
    const manifest = await readManifest(location, deployment, backupId).catch(() => undefined);
    if (!manifest) continue;
    const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
    for await (const entry of readJsonLines<IndexEntry>(location, manifest.artifacts.recordingsIndex, dataKey)) keys.set(entry.b, entry.bk);
    break;
  }
  return keys;
}

/** The syncRecordings checkpoint as it travels in heartbeat details. */
export interface SyncCheckpoint {
  /** Every listing entry before this position is done. */
  processed: number;
  copiedObjects: number;
  copiedBytes: number;
  reusedObjects: number;
  resumedObjects: number;
  bytes: number;
}

export function createSyncActivities(deps: Dependencies) {
  return {
    async snapshotRecordings(input: { deployment: string; backupId: string; target: TargetName; recordingsPoint: string }): Promise<RecordingsSnapshot & { listing: Artifact }> {
      const ctx = Context.current();
      const client = deps.recordingsClient(input.target);
      const bucket = deps.deployment(input.target).recordings.bucket;
      const point = new Date(input.recordingsPoint).getTime();
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      let objects = 0;
      let bytes = 0;
      let newerThanPoint = 0;
      async function* lines(): AsyncGenerator<Buffer> {
        const listing = client.listObjectsV2(bucket, '', true) as AsyncIterable<{ name?: string; size?: number; etag?: string; lastModified?: Date }>;
        for await (const item of listing) {
          if (!item.name || item.name.startsWith(CLOCK_MARKER.split('/')[0]!)) continue;
          if (item.lastModified && item.lastModified.getTime() > point) {
            newerThanPoint += 1;
            continue;
          }
          objects += 1;
          bytes += item.size ?? 0;
          if (objects % 1000 === 0) ctx.heartbeat({ phase: 'listing', objects });
          const entry: ListingEntry = { k: item.name, s: item.size ?? 0, e: (item.etag ?? '').replace(/"/g, '') };
          yield Buffer.from(`${JSON.stringify(entry)}\n`);
        }
      }
      const listing = await writeArtifact(primaryLocation(deps), backupKey(input.deployment, input.backupId, LISTING_ARTIFACT), Readable.from(lines()), dataKey, {
        signal: ctx.cancellationSignal,
      });
      return { objects, bytes, newerThanPoint, listing };
    },

    async syncRecordings(input: { deployment: string; backupId: string; target: TargetName; previousBackupId?: string; listing: Artifact }): Promise<SyncResult> {
      const ctx = Context.current();
      const signal = ctx.cancellationSignal;
      const location = primaryLocation(deps);
      const client = deps.recordingsClient(input.target);
      const bucket = deps.deployment(input.target).recordings.bucket;
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      const previous = input.previousBackupId ? await loadIndexKeys(deps, input.deployment, input.previousBackupId) : new Map<string, string>();
      const resume = activityInfo().heartbeatDetails as SyncCheckpoint | undefined;
      const state: SyncCheckpoint = resume ?? { processed: 0, copiedObjects: 0, copiedBytes: 0, reusedObjects: 0, resumedObjects: 0, bytes: 0 };

      // The checkpoint's counters cover exactly the entries before `processed`: an entry finished out of order is
      // counted only when every entry before it is done, so a retry starting at `processed` never counts it twice.
      const finished = new Map<number, { outcome: 'copied' | 'resumed' | 'reused'; bytes: number }>();
      const beat = () => ctx.heartbeat({ ...state });
      const markDone = (seq: number, outcome: 'copied' | 'resumed' | 'reused', bytes: number) => {
        finished.set(seq, { outcome, bytes });
        for (let next = finished.get(state.processed); next; next = finished.get(state.processed)) {
          finished.delete(state.processed);
          if (next.outcome === 'reused') state.reusedObjects += 1;
          else if (next.outcome === 'copied') state.copiedObjects += 1;
          else state.resumedObjects += 1;
          // A resumed object was copied by this backup, in an attempt that died before recording it: its bytes count.
          if (next.outcome !== 'reused') state.copiedBytes += next.bytes;
          state.bytes += next.bytes;
          state.processed += 1;
        }
        beat();
      };

      async function copyOne(entry: ListingEntry, blobId: string): Promise<'copied' | 'resumed'> {
        const key = blobKey(input.deployment, blobId);
        const sealKey = deriveBlobKey(dataKey, blobId);
        const stat = await location.stat(key);
        if (stat && stat.size === encryptedSize(entry.s) && (await blobSealedWith(location, key, sealKey))) return 'resumed';
        const source = await client.getObject(bucket, entry.k);
        // A single large recording may take longer than the heartbeat timeout: its bytes keep the heartbeat going.
        const meter = new Meter(() => beat(), false);
        const body = source.pipe(meter).pipe(createEncryptStream(sealKey));
        source.on('error', (err) => body.destroy(err));
        await location.put(key, body, encryptedSize(entry.s));
        if (meter.bytes !== entry.s) throw new Error(`recording ${entry.k} changed while it was copied (${meter.bytes} bytes read, ${entry.s} listed)`);
        return 'copied';
      }

      const pool = new TaskPool(deps.config.backup.concurrency);
      let seq = -1;
      for await (const entry of readJsonLines<ListingEntry>(location, input.listing, dataKey)) {
        seq += 1;
        if (seq < state.processed) continue;
        if (signal.aborted) throw signal.reason;
        const mine = seq;
        await pool.run(async () => {
          const blobId = blobIdOf(entry);
          markDone(mine, previous.has(blobId) ? 'reused' : await copyOne(entry, blobId), entry.s);
        });
      }
      await pool.drain();

      // The index is derived again from the listing: every blob key is either the previous backup's or re-derivable.
      async function* indexLines(): AsyncGenerator<Buffer> {
        for await (const entry of readJsonLines<ListingEntry>(location, input.listing, dataKey)) {
          const b = blobIdOf(entry);
          const line: IndexEntry = { ...entry, b, bk: previous.get(b) ?? deriveBlobKey(dataKey, b).toString('base64') };
          yield Buffer.from(`${JSON.stringify(line)}\n`);
        }
      }
      const index = await writeArtifact(location, backupKey(input.deployment, input.backupId, INDEX_ARTIFACT), Readable.from(indexLines()), dataKey, { signal });
      return {
        objects: state.processed,
        bytes: state.bytes,
        copiedObjects: state.copiedObjects,
        copiedBytes: state.copiedBytes,
        reusedObjects: state.reusedObjects,
        resumedObjects: state.resumedObjects,
        index,
      };
    },
  };
}

