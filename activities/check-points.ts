// The check of every committed recordings checkpoint or connector export at one location: its manifest and MAC, its
// artifacts read against their checksums, and every blob a checkpoint's index names, with repair from a good copy.
import { InOrderFold } from '../src/runtime/in-order-fold';
import { Context, activityInfo } from '@temporalio/activity';
import { readAll } from '../src/catalog/artifacts';
import { CHECKPOINT_KIND, CONNECTOR_EXPORT_KIND, type CheckpointManifest, type ConnectorExportManifest, type PointKind } from '../src/catalog/checkpoint-manifest';
import { ManifestAuthenticationError } from '../src/catalog/manifest-mac';
import { listPointIds, readPointManifest } from '../src/catalog/point-in-time-catalog';
import { readRecordingsIndex, type IndexEntry } from '../src/catalog/recordings-index';
import { unwrapKey } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import type { BackupLocation } from '../src/storage';
import { POINT_MANIFEST } from '../src/storage/layout';
import { SortedCursor } from '../src/streams/sorted-cursor';
import { PROBLEMS_KEPT, type CheckCounts, type CheckProblem, type PointCheckKind, type PointsCheckInput, type PointsCheckResult } from '../workflows/check-types';
import { TaskPool, locationByName } from './backup-context';
import { inspectArtifact, readableIndexOf, repairArtifact, wantsRead } from './check-backup';
import { inspectBlob, repairBlob } from './check-blob';

type PointManifest = CheckpointManifest | ConnectorExportManifest;

const KINDS: Record<PointCheckKind, PointKind<PointManifest>> = {
  checkpoint: CHECKPOINT_KIND as PointKind<PointManifest>,
  'connector-export': CONNECTOR_EXPORT_KIND as PointKind<PointManifest>,
};

type ManifestState = { status: 'authenticated'; manifest: PointManifest } | { status: 'missing' } | { status: 'invalid'; mac: boolean; detail: string };

async function manifestAt(deps: Dependencies, location: BackupLocation, kind: PointKind<PointManifest>, deployment: string, id: string): Promise<ManifestState> {
  try {
    const manifest = await readPointManifest(location, kind, deployment, id, deps.keyRing());
    return manifest ? { status: 'authenticated', manifest } : { status: 'missing' };
  } catch (err) {
    return { status: 'invalid', mac: err instanceof ManifestAuthenticationError, detail: (err as Error).message };
  }
}

/** The first location (this one first) whose manifest of the id authenticates: the reference every other copy is held to. */
async function referenceManifest(deps: Dependencies, here: BackupLocation, own: ManifestState, kind: PointKind<PointManifest>, deployment: string, id: string) {
  if (own.status === 'authenticated') return { location: here, manifest: own.manifest };
  for (const location of deps.locations().filter((l) => l.name !== here.name)) {
    const state = await manifestAt(deps, location, kind, deployment, id);
    if (state.status === 'authenticated') return { location, manifest: state.manifest };
  }
  return undefined;
}

async function anyManifestObject(deps: Dependencies, kind: PointKind<PointManifest>, deployment: string, id: string): Promise<boolean> {
  for (const location of deps.locations()) if (await location.exists(kind.key(deployment, id, POINT_MANIFEST)).catch(() => true)) return true;
  return false;
}

/** Committed ids of the kind in any location, ascending; this location must list (another that cannot is reported by the run). */
async function committedIds(deps: Dependencies, here: BackupLocation, kind: PointKind<PointManifest>, deployment: string): Promise<string[]> {
  const ids = new Set<string>();
  for (const location of deps.locations()) {
    try {
      for (const id of (await listPointIds(location, kind as PointKind<unknown>, deployment)).committed) ids.add(id);
    } catch (err) {
      if (location.name === here.name) throw err;
    }
  }
  return [...ids].sort();
}

/** What one id's check at the location adds to the result; kept whole in heartbeats while its blob pass runs. */
interface PointTally extends CheckCounts {
  manifest: 'authenticated' | 'invalid' | 'missing';
}

const emptyTally = (): PointTally => ({ manifest: 'authenticated', artifactsChecked: 0, blobsChecked: 0, blobsShared: 0, blobsRead: 0, bytesRead: 0, problemCount: 0, repairedCount: 0, refusedCount: 0, problems: [] });

/** The heartbeat: `result` covers every id up to `doneThrough`; `current` is the id in hand. */
interface PointsProgress {
  doneThrough?: string;
  current?: { id: string; phase: 'artifacts' } | { id: string; phase: 'blobs'; entriesDone: number; tally: PointTally };
  result: PointsCheckResult;
  /** Figures for progress displays. */
  checked: number;
  entriesDone?: number;
}

/**
 * The index of the checkpoint or backup a checkpoint built on, read alongside its own (both in the bucket's key order),
 * when that one's check in this run covered its blobs at this location. Otherwise, or once it fails, it answers "none":
 * every blob is then checked here.
 */
class PreviousIndex {
  private usable = true;
  private constructor(private readonly cursor: SortedCursor<IndexEntry>) {}

  static async open(deps: Dependencies, here: BackupLocation, manifest: CheckpointManifest, backupIds: readonly string[]): Promise<PreviousIndex> {
    const previous = manifest.previous;
    const deployment = manifest.deployment;
    if (previous?.kind === 'backup' && backupIds.includes(previous.id)) {
      const readable = await readableIndexOf(deps, deployment, previous.id);
      if (readable) {
        const dataKey = unwrapKey(readable.manifest.encryption.dataKey, deps.keyRing());
        return new PreviousIndex(new SortedCursor(readRecordingsIndex(readable.location, readable.manifest.artifacts.recordingsIndex, dataKey), (e) => e.key));
      }
    }
    if (previous?.kind === 'checkpoint') {
      const own = await manifestAt(deps, here, CHECKPOINT_KIND as PointKind<PointManifest>, deployment, previous.id);
      const reference = await referenceManifest(deps, here, own, CHECKPOINT_KIND as PointKind<PointManifest>, deployment, previous.id);
      // Checked here in this run (oldest first) when this location holds it. Its index is read here without a first
      // pass over its checksum: every chunk is authenticated as it is read, and a read that fails answers "none" from
      // then on (its own check reported why), so nothing unread is taken as checked.
      if (reference && (own.status !== 'missing' || reference.manifest.locations.some((l) => l.name === here.name))) {
        const earlier = reference.manifest as CheckpointManifest;
        const dataKey = unwrapKey(earlier.encryption.dataKey, deps.keyRing());
        return new PreviousIndex(new SortedCursor(readRecordingsIndex(here, earlier.artifacts.recordingsIndex, dataKey), (e) => e.key));
      }
    }
    return new PreviousIndex(SortedCursor.empty());
  }

  /** Asked for every key of the checkpoint's index in order, so the cursor stays in step. */
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

export function createPointCheckActivities(deps: Dependencies) {
  return {
    /**
     * Every committed checkpoint (or every connector export) at one location, oldest first. Read-only unless `repair`;
     * a repair writes only what did not verify, each copy checked after it is written, so a second run finds nothing
     * to do. Resumes from its last heartbeat: ids already done are skipped, and the one in hand resumes its blob pass.
     */
    async checkPointsAt(input: PointsCheckInput): Promise<PointsCheckResult> {
      const ctx = Context.current();
      const location = locationByName(deps, input.location);
      const kind = KINDS[input.kind];
      const { deployment } = input;
      const details = activityInfo().heartbeatDetails as PointsProgress | undefined;
      const result: PointsCheckResult = details?.result ?? {
        location: location.name,
        kind: input.kind,
        ids: 0,
        checked: 0,
        notHeld: 0,
        removed: 0,
        manifests: { authenticated: 0, invalid: 0, missing: 0 },
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
      const progress: PointsProgress = { ...(details?.doneThrough ? { doneThrough: details.doneThrough } : {}), result, checked: result.checked };
      const beat = () => ctx.heartbeat(progress);

      for (const id of await committedIds(deps, location, kind, deployment)) {
        if (progress.doneThrough !== undefined && id <= progress.doneThrough) continue;
        const resumed = details?.current?.id === id && details.current.phase === 'blobs' ? details.current : undefined;
        const { state, tally } = await checkOne(id, resumed);
        if (state === 'removed') result.removed += 1;
        else {
          result.ids += 1;
          if (state === 'not-held') result.notHeld += 1;
          else {
            result.checked += 1;
            result.manifests[tally.manifest] += 1;
            for (const field of ['artifactsChecked', 'blobsChecked', 'blobsShared', 'blobsRead', 'bytesRead', 'problemCount', 'repairedCount', 'refusedCount'] as const) result[field] += tally[field];
            result.problems.push(...tally.problems.slice(0, PROBLEMS_KEPT - result.problems.length));
          }
        }
        progress.doneThrough = id;
        delete progress.current;
        delete progress.entriesDone;
        progress.checked = result.checked;
        beat();
      }
      return result;

      /** One id at this location: 'not-held' when it never committed here, 'removed' when retention took it meanwhile. */
      async function checkOne(id: string, resumed: { entriesDone: number; tally: PointTally } | undefined): Promise<{ state: 'checked' | 'not-held' | 'removed'; tally: PointTally }> {
        const tally = resumed?.tally ?? emptyTally();
        progress.current = { id, phase: 'artifacts' };
        const which = input.kind === 'checkpoint' ? { checkpointId: id } : { exportId: id };
        const note = (problem: Omit<CheckProblem, 'location'>) => {
          tally.problemCount += 1;
          if (problem.repair?.outcome === 'repaired') tally.repairedCount += 1;
          if (problem.repair?.outcome === 'refused') tally.refusedCount += 1;
          if (tally.problems.length < PROBLEMS_KEPT) tally.problems.push({ location: location.name, ...which, ...problem });
        };
        let chunks = 0;
        const beatBytes = () => {
          if (++chunks % 64 === 0) beat();
        };
        /** An id whose manifest is gone from every location was removed (retention) while it was checked: nothing to report. */
        const settled = async (state: 'checked' | 'not-held') => ({ state: tally.problemCount > 0 && !(await anyManifestObject(deps, kind, deployment, id)) ? ('removed' as const) : state, tally });

        const own = await manifestAt(deps, location, kind, deployment, id);
        const reference = await referenceManifest(deps, location, own, kind, deployment, id);
        if (!reference) {
          if (own.status === 'missing') return { state: (await anyManifestObject(deps, kind, deployment, id)) ? 'not-held' : 'removed', tally };
          tally.manifest = 'invalid';
          if (!resumed && own.status === 'invalid') {
            note({
              kind: own.mac ? 'manifest-mac' : 'manifest-unreadable',
              detail: own.detail,
              ...(input.repair ? { repair: { outcome: 'refused' as const, reason: `no location holds a manifest of this ${kind.what} whose MAC verifies` } } : {}),
            });
          }
          return settled('checked');
        }
        const manifest = reference.manifest;
        // A location the manifest does not name never committed it (it was down then): nothing there to hold to it.
        if (own.status === 'missing' && !manifest.locations.some((l) => l.name === location.name)) return { state: 'not-held', tally };
        tally.manifest = own.status;

        /** Artifacts whose copy here verifies (or was just repaired): read here without another pass over their checksum. */
        const wholeHere = new Set<string>();
        if (!resumed) {
          for (const [name, artifact] of Object.entries(manifest.artifacts)) {
            const verdict = await inspectArtifact(location, artifact, beatBytes);
            tally.artifactsChecked += 1;
            if (verdict.ok) {
              wholeHere.add(name);
              continue;
            }
            const repair = input.repair ? await repairArtifact(deps, location, artifact, beatBytes) : undefined;
            if (repair?.outcome === 'repaired') wholeHere.add(name);
            note({ kind: verdict.kind, artifact: name, detail: `${artifact.key}: ${verdict.detail}`, ...(repair ? { repair } : {}) });
          }
        }
        if (manifest.kind === 'recordings-checkpoint') {
          await checkBlobs(manifest, tally, note, { entriesDone: resumed?.entriesDone ?? 0, resumed: resumed !== undefined, indexWholeHere: wholeHere.has('recordingsIndex'), beatBytes });
        }

        // A manifest missing or failing its MAC here is copied last, and only once everything it names is whole here:
        // it is the commit point. Its own bytes are copied, so its MAC travels with it; the copy is read back.
        if (own.status === 'missing' || own.status === 'invalid') {
          let repair: CheckProblem['repair'];
          if (input.repair) {
            const key = kind.key(deployment, id, POINT_MANIFEST);
            const remaining = tally.problemCount - tally.repairedCount;
            if (remaining > 0) repair = { outcome: 'refused', reason: `${remaining} other problem(s) of this ${kind.what} remain here; the manifest is copied only once it is whole at this location` };
            else {
              // What was here goes back if the copy does not verify; if its source went meanwhile (retention removes
              // the manifests first), so does the copy: a removed id is not brought back.
              const before = own.status === 'invalid' ? await readAll(await location.get(key)) : undefined;
              const putBack = async () => (before ? location.put(key, before) : location.delete([key]));
              await location.put(key, await reference.location.get(key));
              const after = await manifestAt(deps, location, kind, deployment, id);
              if (!(await reference.location.exists(key))) {
                await location.delete([key]);
                repair = { outcome: 'refused', reason: `the ${kind.what} was removed from ${reference.location.name} meanwhile` };
              } else if (after.status === 'authenticated') repair = { outcome: 'repaired', from: reference.location.name };
              else {
                await putBack();
                repair = { outcome: 'refused', reason: 'the copy written does not verify' };
              }
            }
          }
          note({
            kind: own.status === 'missing' ? 'manifest-missing' : own.mac ? 'manifest-mac' : 'manifest-unreadable',
            detail: own.status === 'missing' ? `no manifest here, though ${reference.location.name} holds one and names this location` : own.detail,
            ...(repair ? { repair } : {}),
          });
        }
        return settled('checked');
      }

      /**
       * Every blob the checkpoint's index names, at this location, except those the checkpoint or backup it built on
       * names for the same recording under the same key (that one's check covered them). Folded in index order, so the
       * heartbeat never counts an entry a retry would check again.
       */
      async function checkBlobs(
        manifest: CheckpointManifest,
        tally: PointTally,
        note: (problem: Omit<CheckProblem, 'location'>) => void,
        options: { entriesDone: number; resumed: boolean; indexWholeHere: boolean; beatBytes: () => void },
      ) {
        const { entriesDone, resumed } = options;
        const id = manifest.checkpointId;
        // The index is read where its checksum verifies: here if it does (or was just repaired), else elsewhere.
        let indexAt: BackupLocation | undefined = options.indexWholeHere ? location : undefined;
        for (const candidate of indexAt ? [] : [location, ...deps.locations().filter((l) => l.name !== location.name)]) {
          if ((await inspectArtifact(candidate, manifest.artifacts.recordingsIndex, options.beatBytes)).ok) {
            indexAt = candidate;
            break;
          }
        }
        if (!indexAt) {
          if (!resumed) note({ kind: 'index-unreadable', artifact: 'recordingsIndex', detail: 'the checkpoint\'s index verifies at no location: its blobs cannot be checked' });
          return;
        }
        const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
        const previous = await PreviousIndex.open(deps, location, manifest, input.backupIds);
        const current = { id, phase: 'blobs' as const, entriesDone, tally };
        progress.current = current;
        progress.entriesDone = entriesDone;
        const blobBeat = () => {
          progress.entriesDone = current.entriesDone;
          beat();
        };
        const inOrder = new InOrderFold(current);
        const pool = new TaskPool(deps.config.backup.concurrency);
        let seq = -1;
        try {
          for await (const entry of readRecordingsIndex(indexAt, manifest.artifacts.recordingsIndex, dataKey)) {
            seq += 1;
            const before = await previous.at(entry.key);
            if (seq < current.entriesDone) continue;
            const mine = seq;
            const shared = before?.blob === entry.blob && before.blobKey === entry.blobKey;
            await pool.run(async () => {
              let fold: () => void;
              if (shared) {
                fold = () => {
                  tally.blobsShared += 1;
                };
              } else {
                const read = wantsRead(input.readData, entry.blob);
                const verdict = await inspectBlob(location, deployment, entry, read, blobBeat);
                const repair = !verdict.ok && input.repair ? await repairBlob(deps, location, deployment, entry, blobBeat) : undefined;
                fold = () => {
                  tally.blobsChecked += 1;
                  if (read) {
                    tally.blobsRead += 1;
                    tally.bytesRead += verdict.bytesRead;
                  }
                  if (!verdict.ok) note({ kind: verdict.kind, recordingKey: entry.key, blob: entry.blob, detail: verdict.detail, ...(repair ? { repair } : {}) });
                };
              }
              inOrder.complete(mine, fold);
              if (current.entriesDone % 50 === 0) blobBeat();
            });
          }
          await pool.drain();
        } finally {
          await previous.close();
        }
      }
    },
  };
}
