// Seed step 6: copy every artifact and every blob missing at another location, then re-verify checksums there. Only
// what this backup adds to the newest backup already committed at that location is looked up there.
import { Context, activityInfo } from '@temporalio/activity';
import { Meter } from '../src/catalog/artifacts';
import { listBackups, readManifest } from '../src/catalog/catalog';
import { DATA_KEY_ARTIFACT } from '../src/catalog/data-key';
import type { Artifact } from '../src/catalog/manifest';
import { ownBlobOf } from '../src/catalog/recording-blobs';
import { readRecordingsIndex, type IndexEntry } from '../src/catalog/recordings-index';
import { unwrapKey } from '../src/crypto';
import { CiphertextCheck } from '../src/crypto/ciphertext-check';
import { encryptedSize } from '../src/crypto/frame-format';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupKey, blobKey, isNotFound, type BackupLocation } from '../src/storage';
import { SortedCursor } from '../src/streams/sorted-cursor';
import type { ReplicateResult } from '../workflows/backup-types';
import { TaskPool, backupDataKey, locationByName, primaryLocation } from './backup-context';
import { verifyChecksums } from './verify';

async function copyObject(from: BackupLocation, to: BackupLocation, key: string, size?: number, onBytes?: () => void): Promise<number> {
  const meter = new Meter(onBytes, false);
  const source = await from.get(key);
  const body = source.pipe(meter);
  source.on('error', (err) => body.destroy(err));
  await to.put(key, body, size);
  return meter.bytes;
}

/** A copy that failed because of its source (missing, damaged, another key): another source may do. */
export class BlobSourceError extends Error {
  override readonly name = 'BlobSourceError';
}

/**
 * Copies a blob's ciphertext as is (no re-encryption, so its name and key stay valid) while opening it alongside: a
 * source that is damaged or sealed under another key fails the upload, which then leaves nothing at `to`. A failure
 * of the source is a BlobSourceError; one of the target is thrown as it is.
 */
export async function copyBlobVerified(from: BackupLocation, to: BackupLocation, deployment: string, entry: IndexEntry, onBytes?: () => void): Promise<number> {
  const key = blobKey(deployment, entry.blob);
  let source;
  try {
    source = await from.get(key);
  } catch (err) {
    // Missing there, or that location unreachable: either way another source may do.
    throw new BlobSourceError(isNotFound(err) ? 'missing' : (err as Error).message);
  }
  let sourceFailure: Error | undefined;
  const check = new CiphertextCheck(Buffer.from(entry.blobKey, 'base64'));
  const meter = new Meter(onBytes, false);
  const body = source.pipe(meter).pipe(check);
  for (const stage of [source, meter, check]) {
    stage.on('error', (err: Error) => {
      sourceFailure ??= err;
      body.destroy(err);
    });
  }
  try {
    await to.put(key, body, encryptedSize(entry.size));
  } catch (err) {
    if (sourceFailure) throw new BlobSourceError(sourceFailure.message);
    throw err;
  }
  if (check.plaintextBytes !== entry.size) throw new BlobSourceError(`it opens to ${check.plaintextBytes} bytes, the index says ${entry.size}`);
  return meter.bytes;
}

/**
 * Copies a blob to `to` from the first of `sources` whose copy opens whole; throws naming every source's problem when
 * none does. A failure to write at `to` is not the sources' fault and is thrown at once.
 */
export async function copyBlobFromAny(sources: readonly BackupLocation[], to: BackupLocation, deployment: string, entry: IndexEntry, onBytes?: () => void): Promise<{ from: string; bytes: number }> {
  const problems: string[] = [];
  for (const from of sources) {
    try {
      return { from: from.name, bytes: await copyBlobVerified(from, to, deployment, entry, onBytes) };
    } catch (err) {
      if (!(err instanceof BlobSourceError)) throw err;
      problems.push(`${from.name}: ${err.message}`);
    }
  }
  throw new BlobSourceError(`no good copy of the blob of recording ${entry.key} (${entry.blob}): ${problems.join('; ')}`);
}

interface ReplicateCheckpoint {
  blobsDone: number;
  blobsCopied: number;
  blobsPresent: number;
  /** Entries identical to the baseline's: held at the location since that backup committed there, not asked about. */
  blobsShared: number;
  /** This backup's own blobs that the copy wrote to the location in its pass: not asked about. */
  blobsWrittenByCopy: number;
  bytesCopied: number;
}

/**
 * The index of the newest backup committed at `to` (its authentic manifest there), other than `backupId`. A manifest
 * is written to a location only after every blob of its backup is there, and retention never sweeps a blob a
 * committed backup names, so an entry of this backup identical to one of that index (same key, blob and key) is at
 * `to` already. `preferred` (the backup this one builds on) is tried first. A location that missed backups falls
 * back to the newest it holds, so everything they added is looked up and copied; one that holds none has no baseline.
 * A blob lost there since is the scheduled `check`'s to find and repair.
 */
async function baselineAt(deps: Dependencies, to: BackupLocation, deployment: string, backupId: string, preferred: string | undefined): Promise<{ backupId?: string; lookup: (key: string) => Promise<IndexEntry | undefined>; close: () => Promise<void> }> {
  const keyRing = deps.keyRing();
  let manifest = preferred && preferred !== backupId ? await readManifest(to, deployment, preferred, { keyRing }).catch(() => undefined) : undefined;
  if (!manifest) {
    const held = await listBackups([to], deployment, { keyRing }).catch(() => []);
    manifest = held.find((e) => e.backupId !== backupId)?.manifest;
  }
  if (!manifest) return { lookup: async () => undefined, close: async () => undefined };
  const cursor = new SortedCursor(readRecordingsIndex(to, manifest.artifacts.recordingsIndex, unwrapKey(manifest.encryption.dataKey, keyRing)), (e) => e.key);
  let usable = true;
  return {
    backupId: manifest.backupId,
    // An index that cannot be read to its end only costs lookups: from there on every entry is asked about.
    lookup: async (key) => {
      if (!usable) return undefined;
      try {
        return await cursor.seek(key);
      } catch {
        usable = false;
        return undefined;
      }
    },
    close: () => cursor.close().catch(() => undefined),
  };
}

export function createReplicateActivities(deps: Dependencies) {
  return {
    async replicate(input: {
      deployment: string;
      backupId: string;
      to: string;
      artifacts: { db: Artifact; connectors: Artifact; recordingsIndex: Artifact };
      /** The backup this one builds on: the first candidate baseline at `to`. */
      previousBackupId?: string;
      /**
       * The copy wrote every blob of this backup's own to `to` in the same pass as the primary (`to` never left it, in
       * any attempt): those are not looked up there again. @default false
       */
      blobsWrittenByCopy?: boolean;
      /**
       * With `blobsWrittenByCopy`: the index's entries as the copy counted them, each either the previous backup's
       * own entry (`shared`: same key, blob and key) or a blob of this backup's own (`own`). When the baseline at `to`
       * is the previous backup, neither kind is looked up there, so the index is not read entry by entry at all.
       */
      indexFromCopy?: { shared: number; own: number };
    }): Promise<ReplicateResult> {
      const ctx = Context.current();
      const from = primaryLocation(deps);
      const to = locationByName(deps, input.to);
      await to.ensureReady();
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      const resumed = activityInfo().heartbeatDetails as Partial<ReplicateCheckpoint> | undefined;
      const state: ReplicateCheckpoint = { blobsDone: 0, blobsCopied: 0, blobsPresent: 0, blobsShared: 0, blobsWrittenByCopy: 0, bytesCopied: 0, ...resumed };
      // A blob the primary lacks or holds damaged is taken from any other location that holds it whole.
      const sources = [from, ...deps.locations().filter((l) => l.name !== from.name && l.name !== to.name)];
      const baseline = await baselineAt(deps, to, input.deployment, input.backupId, input.previousBackupId);

      const beat = () => ctx.heartbeat({ ...state });
      // Blobs first: a location never holds an index that points at blobs it lacks.
      const done = new Set<number>();
      const finish = (seq: number) => {
        done.add(seq);
        while (done.delete(state.blobsDone)) state.blobsDone += 1;
      };
      const pool = new TaskPool(deps.config.backup.concurrency);
      let seq = -1;
      // Every entry is the previous backup's, committed here, or one the copy wrote here: nothing to look up.
      const nothingToLookUp = input.blobsWrittenByCopy === true && input.indexFromCopy !== undefined && baseline.backupId !== undefined && baseline.backupId === input.previousBackupId;
      if (nothingToLookUp) {
        state.blobsShared = input.indexFromCopy!.shared;
        state.blobsWrittenByCopy = input.indexFromCopy!.own;
        state.blobsDone = input.indexFromCopy!.shared + input.indexFromCopy!.own;
      }
      try {
        for await (const entry of nothingToLookUp ? [] : readRecordingsIndex(from, input.artifacts.recordingsIndex, dataKey)) {
          seq += 1;
          if (seq < state.blobsDone) continue;
          const mine = seq;
          const before = await baseline.lookup(entry.key);
          if (before && before.blob === entry.blob && before.blobKey === entry.blobKey) {
            state.blobsShared += 1;
            finish(mine);
            if (state.blobsShared % 5000 === 0) beat();
            continue;
          }
          if (input.blobsWrittenByCopy && ownBlobOf(dataKey, entry).blob === entry.blob) {
            state.blobsWrittenByCopy += 1;
            finish(mine);
            if (state.blobsWrittenByCopy % 5000 === 0) beat();
            continue;
          }
          await pool.run(async () => {
            // A blob's name binds its key: one present whole under that name is this very blob (its bytes are `check`'s
            // to read in rotating slices); one missing or of another size is copied, opened on the way.
            const there = await to.stat(blobKey(input.deployment, entry.blob));
            if (there && there.size === encryptedSize(entry.size)) state.blobsPresent += 1;
            else {
              state.bytesCopied += (await copyBlobFromAny(sources, to, input.deployment, entry, beat)).bytes;
              state.blobsCopied += 1;
            }
            finish(mine);
            beat();
          });
        }
        await pool.drain();
      } finally {
        await baseline.close();
      }

      const keys = [...Object.values(input.artifacts).map((a) => a.key), backupKey(input.deployment, input.backupId, DATA_KEY_ARTIFACT)];
      for (const key of keys) {
        state.bytesCopied += await copyObject(from, to, key, undefined, beat);
        beat();
      }
      await verifyChecksums(to, input.artifacts, beat);
      return {
        location: to.name,
        artifacts: keys.length,
        blobsCopied: state.blobsCopied,
        blobsPresent: state.blobsPresent,
        blobsShared: state.blobsShared,
        ...(state.blobsWrittenByCopy ? { blobsWrittenByCopy: state.blobsWrittenByCopy } : {}),
        ...(baseline.backupId ? { baselineBackupId: baseline.backupId } : {}),
        bytesCopied: state.bytesCopied,
      };
    },
  };
}
