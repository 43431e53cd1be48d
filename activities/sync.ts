// Seed steps 3 and 5a: list the recordings at the consistent point, then copy only what the previous backup does not
// hold, concurrently, encrypted once per blob and written to every location in the same pass, resumable after a crash
// without copying a finished object again.
import { Readable } from 'node:stream';
import { ApplicationFailure, Context, activityInfo } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import { Meter, writeArtifact } from '../src/catalog/artifacts';
import { readManifest } from '../src/catalog/catalog';
import { jsonLine, readJsonLines } from '../src/catalog/json-lines';
import type { Artifact } from '../src/catalog/manifest';
import { blobState, ownBlobOf } from '../src/catalog/recording-blobs';
import { readRecordingsIndex, readRecordingsListing, type IndexEntry, type RecordingEntry } from '../src/catalog/recordings-index';
import { createEncryptStream, unwrapKey } from '../src/crypto';
import { encryptedSize } from '../src/crypto/frame-format';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupKey, blobKey, type BackupLocation } from '../src/storage';
import { putToEach } from '../src/storage/fan-out-put';
import { throttle } from '../src/storage/rate-limiter';
import { faultPoint } from '../src/runtime/fault-points';
import type { RecordingsSnapshot, SyncResult } from '../workflows/backup-types';
import { TaskPool, backupDataKey, primaryLocation } from './backup-context';
import { CLOCK_MARKER } from './dump';
import { OrderedWindow } from '../src/streams/ordered-window';
import { SortedCursor } from '../src/streams/sorted-cursor';
import { listInKeyOrder } from '../src/storage/ordered-listing';

export { readJsonLines };

/** Crash points of the recordings copy, for the crash tests. */
export const SYNC_FAULT_POINTS = {
  /** A chunk of a recording has been read: its blob is part-written at every location lacking it. */
  midBlobWrite: 'sync-recordings:mid-blob-write',
  /** A blob has just been written to every location lacking it, before its index line is. */
  afterBlobWritten: 'sync-recordings:after-blob-written',
} as const;

/** The least time between two heartbeats of the copy (its heartbeat timeout is tens of seconds). */
const HEARTBEAT_EVERY_MS = 250;

export const LISTING_ARTIFACT = 'recordings.listing.enc';
export const INDEX_ARTIFACT = 'recordings.index.enc';

/** The index lines of one shard of the copy, merged into the index by assembleIndex. */
export function indexPartName(index: number, of: number): string {
  return `recordings.index.part-${index}-of-${of}.enc`;
}

/** What one shard of the copy did; `index` is the whole index when there is one shard, else this shard's part. */
export type SyncShardResult = SyncResult;

/**
 * The previous backup's index, read alongside the new listing: both are in the bucket's key order, so "does the
 * previous backup hold this recording?" is a merge, with memory flat in the number of recordings. `committedAtPrimary`:
 * the primary holds that backup's authentic manifest, so it held every blob of it when it committed.
 */
export async function previousIndexCursor(deps: Dependencies, deployment: string, backupId: string | undefined): Promise<{ cursor: SortedCursor<IndexEntry>; committedAtPrimary: boolean }> {
  if (!backupId) return { cursor: SortedCursor.empty(), committedAtPrimary: false };
  // The first location holding a readable, authentic manifest of that backup.
  for (const [i, location] of deps.locations().entries()) {
    const manifest = await readManifest(location, deployment, backupId, { keyRing: deps.keyRing() }).catch(() => undefined);
    if (!manifest) continue;
    const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
    return { cursor: new SortedCursor(readRecordingsIndex(location, manifest.artifacts.recordingsIndex, dataKey), (e) => e.key), committedAtPrimary: i === 0 };
  }
  return { cursor: SortedCursor.empty(), committedAtPrimary: false };
}

/** The syncRecordings checkpoint as it travels in heartbeat details. */
export interface SyncCheckpoint {
  /** Every listing entry before this position is done. */
  processed: number;
  copiedObjects: number;
  copiedBytes: number;
  reusedObjects: number;
  resumedObjects: number;
  /** Recordings the previous backup holds but whose blob was missing or damaged here: copied again under this backup's key. */
  healedObjects: number;
  bytes: number;
  /** Locations that left the copy in this or an earlier attempt: the entries before `processed` may lack there. */
  leftOut?: string[];
}

type Outcome = 'copied' | 'resumed' | 'reused' | 'healed';

export function createSyncActivities(deps: Dependencies) {
  return {
    /**
     * The shards' index parts merged into the one index, in listing order (flat memory: one line per part at a
     * time). Idempotent: the parts stay until the backup commits or is discarded.
     */
    async assembleIndex(input: { deployment: string; backupId: string; parts: Artifact[] }): Promise<Artifact> {
      const ctx = Context.current();
      const location = primaryLocation(deps);
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      if (input.parts.length === 1) return input.parts[0]!;
      let lines = 0;
      async function* merged(): AsyncGenerator<Buffer> {
        const readers = input.parts.map((part) => readRecordingsIndex(location, part, dataKey)[Symbol.asyncIterator]());
        // Listing entry p went to part p % n, in order: taking the parts in turn gives back the listing's order exactly.
        for (let p = 0; ; p++) {
          const next = await readers[p % readers.length]!.next();
          if (next.done) break;
          yield jsonLine(next.value);
          lines += 1;
          if (lines % 5000 === 0) ctx.heartbeat({ phase: 'assemble', lines });
        }
        for (const reader of readers) await reader.return?.(undefined);
      }
      return writeArtifact(location, backupKey(input.deployment, input.backupId, INDEX_ARTIFACT), Readable.from(merged()), dataKey, { signal: ctx.cancellationSignal });
    },

    /**
     * The listing, and how many shards the copy takes: sized by the recordings the previous backup does not hold (read
     * alongside, both in key order), since those are the copy's work; every shard reads the whole listing and the
     * whole previous index, so shards for recordings that are only shared would multiply that reading for nothing.
     */
    async snapshotRecordings(input: { deployment: string; backupId: string; target: TargetName; recordingsPoint: string; previousBackupId?: string }): Promise<RecordingsSnapshot & { listing: Artifact; shards: number; changedObjects: number }> {
      const ctx = Context.current();
      const client = deps.recordingsClient(input.target);
      const bucket = deps.deployment(input.target).recordings.bucket;
      const point = new Date(input.recordingsPoint).getTime();
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      let objects = 0;
      let bytes = 0;
      let newerThanPoint = 0;
      let changedObjects = 0;
      const { cursor: previous } = await previousIndexCursor(deps, input.deployment, input.previousBackupId);
      async function* lines(): AsyncGenerator<Buffer> {
        // In key order, several prefixes (a day's folder each) listed at once ahead of the merge.
        const listing = listInKeyOrder(client, bucket, { concurrency: deps.config.backup.listingConcurrency });
        for await (const item of listing) {
          if (!item.name || item.name.startsWith(CLOCK_MARKER.split('/')[0]!)) continue;
          if (item.lastModified && item.lastModified.getTime() > point) {
            newerThanPoint += 1;
            continue;
          }
          objects += 1;
          bytes += item.size ?? 0;
          if (objects % 1000 === 0) ctx.heartbeat({ phase: 'listing', objects });
          const entry: RecordingEntry = { key: item.name, size: item.size ?? 0, etag: (item.etag ?? '').replace(/"/g, '') };
          const held = await previous.seek(entry.key);
          if (!held || held.etag !== entry.etag || held.size !== entry.size) changedObjects += 1;
          yield jsonLine(entry);
        }
      }
      const listing = await writeArtifact(primaryLocation(deps), backupKey(input.deployment, input.backupId, LISTING_ARTIFACT), Readable.from(lines()), dataKey, {
        signal: ctx.cancellationSignal,
      });
      await previous.close();
      const { objectsPerShard, maxShards } = deps.config.backup;
      return { objects, bytes, newerThanPoint, listing, changedObjects, shards: Math.max(1, Math.min(maxShards, Math.ceil(changedObjects / objectsPerShard))) };
    },

    /**
     * Each recording of the listing ends up in a blob at the primary location (and, written in the same pass, at every
     * other location that takes the write), and the index names it:
     * - held by the previous backup, committed at the primary (or, when it is not, its blob found there): shared (the
   *   previous index's blob and key), with no request to any location;
     * - otherwise: sealed under a key derived from this backup's data key, in a blob whose name binds that key, so
     *   no blob that a committed backup reads is ever written again.
     * The index is written in listing order as entries finish; a retry skips the copies its last heartbeat covered.
     */
    async syncRecordings(input: {
      deployment: string;
      backupId: string;
      target: TargetName;
      previousBackupId?: string;
      listing: Artifact;
      /** This activity's share of the listing: entry number `i` is its when `i % of === index`. @default { index: 0, of: 1 } */
      shard?: { index: number; of: number };
    }): Promise<SyncShardResult> {
      const ctx = Context.current();
      const signal = ctx.cancellationSignal;
      const location = primaryLocation(deps);
      const client = deps.recordingsClient(input.target);
      const bucket = deps.deployment(input.target).recordings.bucket;
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      const { cursor: previous, committedAtPrimary } = await previousIndexCursor(deps, input.deployment, input.previousBackupId);
      const resume = activityInfo().heartbeatDetails as Partial<SyncCheckpoint> | undefined;
      // A first attempt has no earlier attempt's blobs to find: this backup's own blob names are new (they bind its
      // fresh data key), so it writes them without asking each location first. A retry looks before writing.
      const firstAttempt = activityInfo().attempt === 1 && resume === undefined;
      const state: SyncCheckpoint = { processed: 0, copiedObjects: 0, copiedBytes: 0, reusedObjects: 0, resumedObjects: 0, healedObjects: 0, bytes: 0, ...resume };
      const skipBefore = state.processed;
      const shard = input.shard ?? { index: 0, of: 1 };
      if (!(Number.isInteger(shard.of) && shard.of >= 1 && Number.isInteger(shard.index) && shard.index >= 0 && shard.index < shard.of)) {
        throw ApplicationFailure.create({ type: 'BackupInputInvalid', nonRetryable: true, message: `shard ${shard.index} of ${shard.of} does not exist` });
      }

      // The checkpoint's counters cover exactly the entries before `processed`: an entry finished out of order is
      // counted only when every entry before it is done, so a retry starting at `processed` never counts it twice.
      const finished = new Map<number, { outcome: Outcome; bytes: number }>();
      // At most one heartbeat per HEARTBEAT_EVERY_MS: each is encoded and handed to the SDK, which sends the server
      // fewer still, so one per chunk and per recording spent the worker's CPU on checkpoints nobody reads.
      let lastBeat = 0;
      const beat = () => {
        const now = Date.now();
        if (now - lastBeat < HEARTBEAT_EVERY_MS) return;
        lastBeat = now;
        ctx.heartbeat({ ...state });
      };
      const markDone = (seq: number, outcome: Outcome, bytes: number) => {
        finished.set(seq, { outcome, bytes });
        for (let next = finished.get(state.processed); next; next = finished.get(state.processed)) {
          finished.delete(state.processed);
          if (next.outcome === 'reused') state.reusedObjects += 1;
          else if (next.outcome === 'copied') state.copiedObjects += 1;
          else if (next.outcome === 'healed') {
            state.copiedObjects += 1;
            state.healedObjects += 1;
          } else state.resumedObjects += 1;
          // A resumed object was copied by this backup, in an attempt that died before recording it: its bytes count.
          if (next.outcome !== 'reused') state.copiedBytes += next.bytes;
          state.bytes += next.bytes;
          state.processed += 1;
        }
        beat();
      };

      // Every location is written in the same pass. A location other than the primary whose write fails drops out
      // for the rest of this attempt: replicate copies what it lacks, and fails the backup if it still cannot.
      const others = deps.locations().filter((l) => l.name !== location.name);
      const dropped = new Map<string, string>();
      const drop = (name: string, err: unknown) => {
        if (dropped.has(name)) return;
        dropped.set(name, (err as Error).message);
        // In the checkpoint before any entry it missed is counted done, so a retry still knows (and tells replicate).
        state.leftOut = [...new Set([...(state.leftOut ?? []), name])];
        ctx.log.warn(`location "${name}" left the recordings copy; replicate copies what it lacks`, { error: (err as Error).message });
      };
      /** Whether `at` holds this very blob whole: right size and sealed under its key (names bind keys, so the rest follows). */
      const holds = async (at: BackupLocation, key: string, entry: RecordingEntry, sealKey: Buffer) => {
        const found = await blobState(at, key, sealKey);
        return !!found && found.size === encryptedSize(entry.size) && found.sealed;
      };

      /** The recording sealed under this backup's own key: copied to every location lacking it, or found whole from a killed attempt. */
      async function copyOwn(entry: RecordingEntry, alreadyDone: boolean): Promise<{ line: IndexEntry; outcome: 'copied' | 'resumed' }> {
        const own = ownBlobOf(dataKey, entry);
        const line: IndexEntry = { ...entry, blob: own.blob, blobKey: own.blobKey.toString('base64') };
        if (alreadyDone) return { line, outcome: 'resumed' };
        const key = blobKey(input.deployment, own.blob);
        const primaryHolds = !firstAttempt && (await holds(location, key, entry, own.blobKey));
        const lacking: BackupLocation[] = primaryHolds ? [] : [location];
        for (const other of others) {
          if (dropped.has(other.name)) continue;
          try {
            if (firstAttempt || !(await holds(other, key, entry, own.blobKey))) lacking.push(other);
          } catch (err) {
            drop(other.name, err);
          }
        }
        if (lacking.length === 0) return { line, outcome: 'resumed' };
        const source = await client.getObject(bucket, entry.key);
        // A single large recording may take longer than the heartbeat timeout: its bytes keep the heartbeat going.
        const meter = new Meter(() => {
          beat();
          faultPoint(SYNC_FAULT_POINTS.midBlobWrite);
        }, false);
        const limiter = deps.recordingsLimiter(input.target);
        const read = limiter ? source.pipe(throttle(limiter)) : source;
        const body = read.pipe(meter).pipe(createEncryptStream(own.blobKey));
        for (const stage of new Set([source, read])) stage.on('error', (err) => body.destroy(err));
        const result = await putToEach(lacking, key, body, encryptedSize(entry.size));
        faultPoint(SYNC_FAULT_POINTS.afterBlobWritten);
        for (const failed of result.failed) {
          if (failed.location === location.name) throw failed.error;
          drop(failed.location, failed.error);
        }
        if (meter.bytes !== entry.size) throw new Error(`recording ${entry.key} changed while it was copied (${meter.bytes} bytes read, ${entry.size} listed)`);
        return { line, outcome: primaryHolds ? 'resumed' : 'copied' };
      }

      async function place(entry: RecordingEntry, held: IndexEntry | undefined, alreadyDone: boolean): Promise<{ line: IndexEntry; outcome: Outcome }> {
        if (held) {
          // The previous backup committed here, so its blobs were here whole; one lost since is the scheduled
          // `check`'s to find and repair (it checks each shared blob at the backup that first names it). Asking the
          // primary about every recording held would make a backup's cost follow what is held, not what changed.
          if (committedAtPrimary) return { line: { ...entry, blob: held.blob, blobKey: held.blobKey }, outcome: 'reused' };
          const stat = await location.stat(blobKey(input.deployment, held.blob));
          if (stat && stat.size === encryptedSize(entry.size)) return { line: { ...entry, blob: held.blob, blobKey: held.blobKey }, outcome: 'reused' };
          // The previous backup's blob is gone or damaged here: this backup heals the gap under a blob of its own.
          const own = await copyOwn(entry, alreadyDone);
          return { ...own, outcome: own.outcome === 'copied' ? 'healed' : own.outcome };
        }
        return copyOwn(entry, alreadyDone);
      }

      const transfers = new TaskPool(deps.config.backup.concurrency);
      const window = new OrderedWindow<IndexEntry>(deps.config.backup.concurrency * 8);
      async function* indexLines(): AsyncGenerator<Buffer> {
        let seq = -1;
        let position = -1;
        for await (const entry of readRecordingsListing(location, input.listing, dataKey)) {
          position += 1;
          if (position % shard.of !== shard.index) continue;
          seq += 1;
          if (signal.aborted) throw signal.reason;
          const mine = seq;
          const alreadyDone = mine < skipBefore;
          const candidate = await previous.seek(entry.key);
          // The recording's identity (key, ETag, size) compared field by field: a hash of each per entry costs CPU only.
          const held = candidate && candidate.etag === entry.etag && candidate.size === entry.size ? candidate : undefined;
          const ready = window.push(
            transfers.call(async () => {
              const { line, outcome } = await place(entry, held, alreadyDone);
              // Entries a killed attempt finished are only re-read: they heartbeat too.
              if (alreadyDone) beat();
              else markDone(mine, outcome, entry.size);
              return line;
            }),
          );
          for (const line of await ready) yield jsonLine(line);
        }
        for (const line of await window.drain()) yield jsonLine(line);
      }
      const name = shard.of === 1 ? INDEX_ARTIFACT : indexPartName(shard.index, shard.of);
      const index = await writeArtifact(location, backupKey(input.deployment, input.backupId, name), Readable.from(indexLines()), dataKey, { signal });
      await previous.close();
      return {
        objects: state.processed,
        bytes: state.bytes,
        copiedObjects: state.copiedObjects,
        copiedBytes: state.copiedBytes,
        reusedObjects: state.reusedObjects,
        resumedObjects: state.resumedObjects,
        healedObjects: state.healedObjects,
        index,
        ...(state.leftOut?.length ? { locationsLeftOut: state.leftOut } : {}),
      };
    },
  };
}

