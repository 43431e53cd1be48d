// The check of one backup at one location: its manifest and MAC, its artifacts' sizes and checksums, and every blob
// its index names (present, size, header key; read whole in the chosen slice), with repair from a good copy.
import { Context, activityInfo } from '@temporalio/activity';
import { checksumMismatch, hashStored } from '../src/catalog/artifacts';
import { readManifest } from '../src/catalog/catalog';
import type { Artifact, Manifest } from '../src/catalog/manifest';
import { ManifestAuthenticationError } from '../src/catalog/manifest-mac';
import { blobSlice } from '../src/catalog/blob-slice';
import { readRecordingsIndex, type IndexEntry } from '../src/catalog/recordings-index';
import { unwrapKey } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { isNotFound, manifestKey, type BackupLocation } from '../src/storage';
import { SortedCursor } from '../src/streams/sorted-cursor';
import { PROBLEMS_KEPT, type BackupCheckInput, type BackupCheckResult, type CheckProblem, type ReadDataScope } from '../workflows/check-types';
import { InOrderFold } from '../src/runtime/in-order-fold';
import { TaskPool, locationByName } from './backup-context';
import { inspectBlob, repairBlob } from './check-blob';

type ManifestState = { status: 'authenticated' | 'unauthenticated'; manifest: Manifest } | { status: 'missing' } | { status: 'invalid'; mac: boolean; detail: string };

async function manifestAt(location: BackupLocation, deps: Dependencies, deployment: string, backupId: string): Promise<ManifestState> {
  try {
    const manifest = await readManifest(location, deployment, backupId, { keyRing: deps.keyRing() });
    if (!manifest) return { status: 'missing' };
    return { status: manifest.authentication ? 'authenticated' : 'unauthenticated', manifest };
  } catch (err) {
    return { status: 'invalid', mac: err instanceof ManifestAuthenticationError, detail: (err as Error).message };
  }
}

/** The first location (this one first) whose manifest of the backup verifies: the reference every other copy is held to. */
async function referenceManifest(deps: Dependencies, here: BackupLocation, own: ManifestState, deployment: string, backupId: string) {
  if (own.status === 'authenticated' || own.status === 'unauthenticated') return { location: here, manifest: own.manifest };
  for (const location of deps.locations().filter((l) => l.name !== here.name)) {
    const state = await manifestAt(location, deps, deployment, backupId);
    if (state.status === 'authenticated' || state.status === 'unauthenticated') return { location, manifest: state.manifest };
  }
  return undefined;
}

async function anyManifestObject(deps: Dependencies, deployment: string, backupId: string): Promise<boolean> {
  for (const location of deps.locations()) if (await location.exists(manifestKey(deployment, backupId)).catch(() => true)) return true;
  return false;
}

export type ArtifactVerdict = { ok: true } | { ok: false; kind: 'artifact-missing' | 'artifact-damaged'; detail: string };

export async function inspectArtifact(location: BackupLocation, artifact: Artifact, onBytes?: () => void): Promise<ArtifactVerdict> {
  let stored;
  try {
    stored = await hashStored(location, artifact.key, onBytes);
  } catch (err) {
    if (isNotFound(err)) return { ok: false, kind: 'artifact-missing', detail: 'it is missing' };
    // A read that fails is the location's trouble, not the artifact's: the activity is retried.
    throw err;
  }
  const mismatch = checksumMismatch(stored, artifact);
  return mismatch ? { ok: false, kind: 'artifact-damaged', detail: mismatch } : { ok: true };
}

/** Copies an artifact from the first other location where its checksum verifies, then checks the copy. */
export async function repairArtifact(deps: Dependencies, to: BackupLocation, artifact: Artifact, onBytes?: () => void): Promise<CheckProblem['repair']> {
  const problems: string[] = [];
  for (const from of deps.locations().filter((l) => l.name !== to.name)) {
    const there = await inspectArtifact(from, artifact, onBytes).catch((err: Error) => ({ ok: false as const, detail: `it cannot be read: ${err.message}` }));
    if (!there.ok) {
      problems.push(`${from.name}: ${there.detail}`);
      continue;
    }
    try {
      await to.put(artifact.key, await from.get(artifact.key), artifact.size);
    } catch (err) {
      problems.push(`${from.name}: the copy failed: ${(err as Error).message}`);
      continue;
    }
    const after = await inspectArtifact(to, artifact, onBytes);
    if (after.ok) return { outcome: 'repaired', from: from.name };
    problems.push(`${from.name}: the copy written does not verify (${after.detail})`);
  }
  return { outcome: 'refused', reason: `no good copy: ${problems.join('; ') || 'no other location'}` };
}

/** A verifying manifest of the backup and a location where its recordings index verifies; undefined when none does. */
export async function readableIndexOf(deps: Dependencies, deployment: string, backupId: string): Promise<{ manifest: Manifest; location: BackupLocation } | undefined> {
  let manifest: Manifest | undefined;
  for (const location of deps.locations()) {
    const state = await manifestAt(location, deps, deployment, backupId);
    if (state.status === 'authenticated' || state.status === 'unauthenticated') {
      manifest = state.manifest;
      break;
    }
  }
  if (!manifest) return undefined;
  for (const location of deps.locations()) {
    if ((await inspectArtifact(location, manifest.artifacts.recordingsIndex)).ok) return { manifest, location };
  }
  return undefined;
}

/**
 * A neighbouring backup's index entries, by recording key, read alongside this backup's index (both are in the bucket's
 * key order). A neighbour that cannot be read, or turns out unsorted, answers "none": every blob is then checked here.
 */
class NeighbourIndex {
  private usable = true;
  private constructor(
    readonly backupId: string | undefined,
    private readonly cursor: SortedCursor<IndexEntry>,
  ) {}

  static async open(deps: Dependencies, deployment: string, backupId: string | undefined): Promise<NeighbourIndex> {
    const readable = backupId ? await readableIndexOf(deps, deployment, backupId) : undefined;
    if (!readable) return new NeighbourIndex(backupId, SortedCursor.empty());
    const dataKey = unwrapKey(readable.manifest.encryption.dataKey, deps.keyRing());
    return new NeighbourIndex(backupId, new SortedCursor(readRecordingsIndex(readable.location, readable.manifest.artifacts.recordingsIndex, dataKey), (e) => e.key));
  }

  /** Asked for every key of this backup's index in order, so the cursor stays in step. */
  async at(key: string): Promise<IndexEntry | undefined> {
    if (!this.usable) return undefined;
    try {
      return await this.cursor.seek(key);
    } catch {
      this.usable = false;
      return undefined;
    }
  }

  async close(): Promise<void> {
    await this.cursor.close().catch(() => undefined);
  }
}

export function wantsRead(scope: ReadDataScope | undefined, blob: string): boolean {
  if (!scope) return false;
  return scope === 'all' || blobSlice(blob, scope.of) === scope.slice;
}

/** The checkpoint in heartbeat details: counters and problems cover exactly the index entries before `entriesDone`. */
interface BlobCheckpoint {
  phase: 'blobs';
  entriesDone: number;
  result: BackupCheckResult;
}

export function createBackupCheckActivities(deps: Dependencies) {
  return {
    /**
     * Read-only unless `repair`; a repair writes only what did not verify, each copy checked after it is written, so
     * a second run (or a retry) finds nothing left to do. Resumes the blob pass from its last heartbeat.
     */
    async checkBackupAt(input: BackupCheckInput): Promise<BackupCheckResult> {
      const ctx = Context.current();
      const location = locationByName(deps, input.location);
      const { deployment, backupId } = input;
      const details = activityInfo().heartbeatDetails as BlobCheckpoint | { phase: 'artifacts' } | undefined;
      // Only the blob pass resumes: manifest and artifacts are checked again (few, and idempotent to repair).
      const resumed = details?.phase === 'blobs' ? details : undefined;
      const result: BackupCheckResult = resumed?.result ?? {
        location: location.name,
        backupId,
        manifest: 'missing',
        artifactsChecked: 0,
        blobsChecked: 0,
        blobsShared: 0,
        blobsRead: 0,
        bytesRead: 0,
        problemCount: 0,
        repairedCount: 0,
        refusedCount: 0,
        problems: [],
      };
      const note = (problem: Omit<CheckProblem, 'location' | 'backupId'>) => {
        result.problemCount += 1;
        if (problem.repair?.outcome === 'repaired') result.repairedCount += 1;
        if (problem.repair?.outcome === 'refused') result.refusedCount += 1;
        if (result.problems.length < PROBLEMS_KEPT) result.problems.push({ location: location.name, backupId, ...problem });
      };
      let bytesSinceBeat = 0;
      const beatBytes = () => {
        if (++bytesSinceBeat % 64 === 0) ctx.heartbeat(resumed ? { ...resumed } : { phase: 'artifacts' });
      };

      const own = await manifestAt(location, deps, deployment, backupId);
      const reference = await referenceManifest(deps, location, own, deployment, backupId);
      if (!reference) {
        if (own.status === 'missing' && !(await anyManifestObject(deps, deployment, backupId))) return { ...result, manifest: 'removed' };
        result.manifest = own.status === 'invalid' ? 'invalid' : 'missing';
        if (!resumed) {
          note({
            kind: own.status === 'invalid' ? (own.mac ? 'manifest-mac' : 'manifest-unreadable') : 'manifest-missing',
            detail: own.status === 'invalid' ? own.detail : 'no manifest here',
            ...(input.repair ? { repair: { outcome: 'refused' as const, reason: 'no location holds a manifest of this backup whose MAC verifies' } } : {}),
          });
        }
        return result;
      }
      const manifest = reference.manifest;
      result.manifest = own.status === 'invalid' ? 'invalid' : own.status;

      /**
       * A manifest missing or failing its MAC here is reported last and, with repair, copied last: the manifest is the
       * commit point, so it is written only once everything it names is whole at this location, and only while the
       * copy it comes from is still there (a backup being removed is not brought back).
       */
      const settleManifest = async () => {
        if (own.status !== 'missing' && own.status !== 'invalid') return;
        let repair: CheckProblem['repair'];
        if (input.repair) {
          const key = manifestKey(deployment, backupId);
          const remaining = result.problemCount - result.repairedCount;
          if (remaining > 0) repair = { outcome: 'refused', reason: `${remaining} other problem(s) of this backup remain here; the manifest is copied only once the backup is whole at this location` };
          else {
            // The verifying manifest's own bytes, so its MAC travels with it.
            await location.put(key, await reference.location.get(key));
            const after = await manifestAt(location, deps, deployment, backupId);
            if (!(await reference.location.exists(key))) {
              await location.delete([key]);
              repair = { outcome: 'refused', reason: `the backup was removed from ${reference.location.name} meanwhile` };
            } else if (after.status === 'authenticated' || after.status === 'unauthenticated') repair = { outcome: 'repaired', from: reference.location.name };
            else repair = { outcome: 'refused', reason: 'the copy written does not verify' };
          }
        }
        note({
          kind: own.status === 'missing' ? 'manifest-missing' : own.mac ? 'manifest-mac' : 'manifest-unreadable',
          detail: own.status === 'missing' ? `no manifest here, though ${reference.location.name} holds one` : own.detail,
          ...(repair ? { repair } : {}),
        });
      };

      if (!resumed) {
        for (const [name, artifact] of Object.entries(manifest.artifacts)) {
          const verdict = await inspectArtifact(location, artifact, beatBytes);
          result.artifactsChecked += 1;
          if (verdict.ok) continue;
          const repair = input.repair ? await repairArtifact(deps, location, artifact, beatBytes) : undefined;
          note({ kind: verdict.kind, artifact: name, detail: `${artifact.key}: ${verdict.detail}`, ...(repair ? { repair } : {}) });
        }
      }

      // The index is read where its checksum verifies: here if it does (or was just repaired), else elsewhere.
      let indexAt: BackupLocation | undefined;
      for (const candidate of [location, ...deps.locations().filter((l) => l.name !== location.name)]) {
        if ((await inspectArtifact(candidate, manifest.artifacts.recordingsIndex)).ok) {
          indexAt = candidate;
          break;
        }
      }
      if (!indexAt) {
        if (!resumed) note({ kind: 'index-unreadable', artifact: 'recordingsIndex', detail: 'the recordings index verifies at no location: its blobs cannot be checked' });
        await settleManifest();
        return result;
      }

      const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
      // The previous backup's check covers the blobs it shares with this one; a neighbour naming the same blob under
      // another key is the format 1 defect (the name did not bind the key), which no copy under that name can fix.
      const previous = await NeighbourIndex.open(deps, deployment, input.previousBackupId);
      const following = await NeighbourIndex.open(deps, deployment, input.nextBackupId);
      const checkpoint: BlobCheckpoint = { phase: 'blobs', entriesDone: resumed?.entriesDone ?? 0, result };
      const inOrder = new InOrderFold(checkpoint);
      const beat = () => ctx.heartbeat(checkpoint);
      const pool = new TaskPool(deps.config.backup.concurrency);
      let seq = -1;
      for await (const entry of readRecordingsIndex(indexAt, manifest.artifacts.recordingsIndex, dataKey)) {
        seq += 1;
        const before = await previous.at(entry.key);
        const after = await following.at(entry.key);
        if (seq < checkpoint.entriesDone) continue;
        const mine = seq;
        const shared = before?.blob === entry.blob && before.blobKey === entry.blobKey;
        const rival = [before && { id: previous.backupId, entry: before }, after && { id: following.backupId, entry: after }].find((n) => n && n.entry.blob === entry.blob && n.entry.blobKey !== entry.blobKey);
        await pool.run(async () => {
          let fold: () => void;
          if (shared) {
            fold = () => {
              result.blobsShared += 1;
            };
          } else {
            const read = wantsRead(input.readData, entry.blob);
            const verdict = await inspectBlob(location, deployment, entry, read, beat);
            let repair: CheckProblem['repair'];
            if (!verdict.ok && input.repair) {
              repair = rival
                ? { outcome: 'refused', reason: `backup ${rival.id} names the same blob ${entry.blob} under another key (a format 1 name shared by two keys): a copy for one would break the other here; a new backup writes the recording under a format 2 name` }
                : await repairBlob(deps, location, deployment, entry, beat);
            }
            fold = () => {
              result.blobsChecked += 1;
              if (read) {
                result.blobsRead += 1;
                result.bytesRead += verdict.bytesRead;
              }
              if (!verdict.ok) note({ kind: verdict.kind, recordingKey: entry.key, blob: entry.blob, detail: verdict.detail, ...(repair ? { repair } : {}) });
            };
          }
          // Folded in index order, so the checkpoint never counts an entry a retry would check again.
          inOrder.complete(mine, fold);
          if (checkpoint.entriesDone % 50 === 0) beat();
        });
      }
      await pool.drain();
      await previous.close();
      await following.close();
      await settleManifest();
      return result;
    },
  };
}
