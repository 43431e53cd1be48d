// Restore step 3, the recordings: the bucket made equal to the backup's index, newer objects moved to a quarantine
// prefix (never deleted), and the undo that puts them back. Every step checks before it acts, against the ETags the
// plan recorded, so a retry after a crash at any line neither overwrites a quarantine copy nor removes a live version.
import { createHash } from 'node:crypto';
import { Context, activityInfo } from '@temporalio/activity';
import type { BucketItemStat } from 'minio';
import { readAll } from '../src/catalog/artifacts';
import type { TargetName } from '../src/config/load';
import { faultPoint } from '../src/runtime/fault-points';
import type { Dependencies } from '../src/runtime/dependencies';
import { isNotFound, type BackupLocation } from '../src/storage';
import type { RecordingsResult, ResolvedBackup, ServedElsewhere } from '../workflows/restore-types';
import { TaskPool, backupDataKey, locationByName, primaryLocation } from './backup-context';
import { CLOCK_MARKER } from './dump';
import { RESTORED_BY_METADATA, RecordingUnrecoverableError, locationsInOrder, putRecordingFromBackup } from './recording-source';
import { readRecordingsIndex } from '../src/catalog/recordings-index';
import { KeyOrderError, mergePlan, planBody, planInMemory, type LiveObject, type PlanCounts, type PlanEntry } from './recordings-plan';
import { restoreFailure } from './restore-failure';
import { journalArtifact, journalKey, restoreKey, writeJournal } from './restore-journal';
import { readJsonLines } from './sync';

/** Recordings a restore moves aside, never deletes: under the bucket's own reserved prefix, per restore. */
export const QUARANTINE_PREFIX = '.vaultpam-backup/quarantine/';

export const RESERVED_PREFIX = CLOCK_MARKER.split('/')[0]!;

/** Journal entry names. The plan's format is versioned in its name: a plan of another format is never misread. */
export const PLAN_JOURNAL = 'recordings-plan-v2';
/** The plan's name before its entries carried ETags: a rollback cannot check against it. */
const LEGACY_PLAN_JOURNAL = 'recordings-plan';
/** The recordings preflight found in no location (sorted like the index); the confirmation accepted their loss. */
export const UNRECOVERABLE_JOURNAL = 'recordings-unrecoverable';

/** Bounded lists in results and heartbeats: histories stay small whatever the recordings count. */
export const LISTED_AT_MOST = 20;

export const RESTORE_FAULT_POINTS = {
  afterPlan: 'plan-recordings:after-plan',
  afterQuarantineAndRestore: 'restore-recordings:after-quarantine-and-restore',
  revertStart: 'revert-recordings:start',
  afterRemoveRestored: 'revert-recordings:after-remove-restored',
  afterPutBack: 'revert-recordings:after-put-back',
} as const;

type Recordings = { client: ReturnType<Dependencies['recordingsClient']>; bucket: string };

function quarantineKey(restoreId: string, key: string): string {
  return `${QUARANTINE_PREFIX}${restoreId}/${key}`;
}

function copySource(bucket: string, key: string): string {
  return `/${bucket}/${encodeURI(key)}`;
}

function cleanEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/"/g, '');
}

async function statOrUndefined(r: Recordings, key: string): Promise<BucketItemStat | undefined> {
  try {
    return await r.client.statObject(r.bucket, key);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'NotFound' || code === 'NoSuchKey') return undefined;
    throw err;
  }
}

/**
 * The same version as one recorded: equal size and ETag. An ETag with a part count ("-N") is a multipart upload's;
 * a server-side copy gets a single-part ETag, so for those the size is what can be compared.
 */
function sameVersion(stat: { etag: string; size: number }, recorded: { etag: string; size: number }): boolean {
  if (stat.size !== recorded.size) return false;
  return cleanEtag(stat.etag) === recorded.etag || recorded.etag.includes('-');
}

/** The live listing, without the bucket's reserved prefix (quarantine, clock marker). */
async function* liveObjects(r: Recordings): AsyncGenerator<LiveObject> {
  const listing = r.client.listObjectsV2(r.bucket, '', true) as AsyncIterable<{ name?: string; etag?: string; size?: number }>;
  for await (const item of listing) {
    if (!item.name || item.name.startsWith(RESERVED_PREFIX)) continue;
    yield { key: item.name, etag: cleanEtag(item.etag), size: item.size ?? 0 };
  }
}

async function* noKeys(): AsyncGenerator<{ key: string }> {}

/** Where the ETag of a restored version is kept (journal location) when the bucket gave it another than the backup's (multipart uploads). */
export function restoredEtagKey(deployment: string, restoreId: string, key: string): string {
  return restoreKey(deployment, restoreId, `restored-etags/${createHash('sha256').update(key).digest('hex')}.json`);
}

/** Heartbeat details of restoreRecordings: progress, and what a retry carries on (bounded). */
interface RestoreProgress {
  phase: 'plan' | 'recordings' | 'count';
  done: number;
  servedElsewhere: ServedElsewhere;
}

export function createRecordingsRestoreActivities(deps: Dependencies) {
  const journalLocation = (name: string | undefined) => (name ? locationByName(deps, name) : primaryLocation(deps));
  const recordings = (target: TargetName): Recordings => ({ client: deps.recordingsClient(target), bucket: deps.deployment(target).recordings.bucket });

  async function recordRestoredEtag(journal: BackupLocation, deployment: string, restoreId: string, key: string, etag: string): Promise<void> {
    await journal.put(restoredEtagKey(deployment, restoreId, key), Buffer.from(JSON.stringify({ key, etag })));
  }

  async function recordedRestoredEtag(journal: BackupLocation, deployment: string, restoreId: string, key: string): Promise<string | undefined> {
    try {
      return (JSON.parse((await readAll(await journal.get(restoredEtagKey(deployment, restoreId, key)))).toString('utf8')) as { etag: string }).etag;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Whether the object at a key is the version this restore wrote: it carries this restore's id, the backup's size,
   * and the ETag the put returned (the backup's own, or the one recorded beside the journal when it differed).
   */
  async function isRestoredVersion(stat: BucketItemStat, entry: PlanEntry, journal: BackupLocation, deployment: string, restoreId: string): Promise<boolean> {
    if (!entry.restore || stat.metaData?.[RESTORED_BY_METADATA] !== restoreId || stat.size !== entry.restore.size) return false;
    const etag = cleanEtag(stat.etag);
    if (etag === entry.restore.etag) return true;
    const recorded = await recordedRestoredEtag(journal, deployment, restoreId, entry.key);
    // No record: the put landed and the attempt died before writing it; this restore's id on the object is the proof.
    return recorded === undefined || recorded === etag;
  }

  async function readPlan(journal: BackupLocation, deployment: string, restoreId: string) {
    const artifact = await journalArtifact(journal, PLAN_JOURNAL, deployment, restoreId);
    if (!artifact) return undefined;
    const key = await journalKey(journal, deps, deployment, restoreId);
    return () => readJsonLines<PlanEntry>(journal, artifact, key);
  }

  /**
   * The plan journalled once: the backup's index merged with the bucket as listed now. A plan already there is kept,
   * so every key the restore later touches is one listed at that moment; objects written afterwards are never in it.
   */
  async function writePlanOnce(
    input: { target: TargetName; deployment: string; restoreId: string; backup: ResolvedBackup; journal?: string },
    onProgress: (seen: number) => void,
  ): Promise<PlanCounts | undefined> {
    const journal = journalLocation(input.journal);
    if (await journalArtifact(journal, PLAN_JOURNAL, input.deployment, input.restoreId)) return undefined;
    const r = recordings(input.target);
    const source = locationByName(deps, input.backup.location);
    const dataKey = await backupDataKey(deps, input.deployment, input.backup.backupId);
    const journalDataKey = await journalKey(journal, deps, input.deployment, input.restoreId);
    const unrecoverableArtifact = await journalArtifact(journal, UNRECOVERABLE_JOURNAL, input.deployment, input.restoreId);
    const unrecoverable = () => (unrecoverableArtifact ? readJsonLines<{ key: string }>(journal, unrecoverableArtifact, journalDataKey) : noKeys());
    const streams = () => [readRecordingsIndex(source, input.backup.artifacts.recordingsIndex, dataKey), liveObjects(r), unrecoverable()] as const;
    const counts: PlanCounts = { entries: 0, unchanged: 0 };
    try {
      await writeJournal(journal, deps, input.deployment, input.restoreId, PLAN_JOURNAL, planBody(mergePlan(...streams(), counts, onProgress)));
    } catch (err) {
      if (!(err instanceof KeyOrderError)) throw err;
      Context.current().log.warn(`the recordings plan is built in memory: ${err.message}`);
      Object.assign(counts, { entries: 0, unchanged: 0 });
      await writeJournal(journal, deps, input.deployment, input.restoreId, PLAN_JOURNAL, planBody(planInMemory(...streams(), counts, onProgress)));
    }
    return counts;
  }

  return {
    /**
     * The recordings plan made while the control plane is stopped, so that the restore of the recordings can run
     * behind a serving control plane and leave alone every object written after this (a smoke test's recording,
     * users' new sessions). Idempotent: a plan already journalled is kept.
     */
    async planRecordingsRestore(input: { target: TargetName; deployment: string; restoreId: string; backup: ResolvedBackup; journal?: string }): Promise<{ planned: number; unchanged: number; alreadyPlanned: boolean }> {
      const ctx = Context.current();
      const counts = await writePlanOnce(input, (n) => ctx.heartbeat({ phase: 'plan', done: n }));
      faultPoint(RESTORE_FAULT_POINTS.afterPlan);
      if (counts) return { planned: counts.entries, unchanged: counts.unchanged, alreadyPlanned: false };
      // Planned by an attempt that died before answering: counted again from the journal.
      const plan = (await readPlan(journalLocation(input.journal), input.deployment, input.restoreId))!;
      let planned = 0;
      for await (const _ of plan()) planned += 1;
      return { planned, unchanged: 0, alreadyPlanned: true };
    },

    /**
     * Restore step 3: the bucket made equal to the backup's index. Objects the backup lacks (or holds otherwise) move
     * to the quarantine prefix; missing ones are decrypted back, each from the first location where it verifies. The
     * plan is journalled before anything moves.
     */
    async restoreRecordings(input: {
      target: TargetName;
      deployment: string;
      restoreId: string;
      backup: ResolvedBackup;
      journal?: string;
      /** The objects the plan found equal to the backup's, when planRecordingsRestore counted them (the bucket may hold newer ones by now). */
      unchanged?: number;
    }): Promise<RecordingsResult> {
      const ctx = Context.current();
      const r = recordings(input.target);
      const journal = journalLocation(input.journal);
      const sources = locationsInOrder(deps, input.backup.location);
      const resumed = activityInfo().heartbeatDetails as RestoreProgress | undefined;
      const servedElsewhere: ServedElsewhere = resumed?.servedElsewhere ?? { count: 0, examples: [] };
      const beat = (phase: RestoreProgress['phase'], done: number) => ctx.heartbeat({ phase, done, servedElsewhere } satisfies RestoreProgress);

      await writePlanOnce(input, (n) => beat('plan', n));
      const plan = (await readPlan(journal, input.deployment, input.restoreId))!;

      /** The live version moved aside: copied once (an existing quarantine copy is never overwritten), then removed. */
      async function quarantine(entry: PlanEntry & { live: NonNullable<PlanEntry['live']> }): Promise<void> {
        const aside = quarantineKey(input.restoreId, entry.key);
        let asideStat = await statOrUndefined(r, aside);
        const liveStat = await statOrUndefined(r, entry.key);
        const liveIsPlanned = liveStat !== undefined && cleanEtag(liveStat.etag) === entry.live.etag && liveStat.size === entry.live.size;
        if (!asideStat) {
          if (!liveStat) return; // Gone before the plan ran: nothing to keep.
          if (!liveIsPlanned) {
            throw restoreFailure('RestoreStateInvalid', `recording ${entry.key} changed after the restore plan was made (ETag ${cleanEtag(liveStat.etag)}, planned ${entry.live.etag}); it was left in place`);
          }
          await r.client.copyObject(r.bucket, aside, copySource(r.bucket, entry.key));
          asideStat = await statOrUndefined(r, aside);
        }
        if (!asideStat || !sameVersion({ etag: asideStat.etag, size: asideStat.size }, entry.live)) {
          throw restoreFailure('RestoreStateInvalid', `the quarantine copy ${aside} does not hold the live version ${entry.live.etag} of ${entry.key}; nothing was removed`);
        }
        // Only the version the plan saw is removed: after a retry the key may already hold the restored one.
        if (liveIsPlanned) await r.client.removeObject(r.bucket, entry.key);
      }

      /** The backup's version put back, unless this restore already put it there. */
      async function restoreOne(entry: PlanEntry & { restore: NonNullable<PlanEntry['restore']> }): Promise<void> {
        const liveStat = await statOrUndefined(r, entry.key);
        if (liveStat) {
          if (await isRestoredVersion(liveStat, entry, journal, input.deployment, input.restoreId)) {
            const etag = cleanEtag(liveStat.etag);
            if (etag !== entry.restore.etag) await recordRestoredEtag(journal, input.deployment, input.restoreId, entry.key, etag);
            return;
          }
          throw restoreFailure('RestoreStateInvalid', `recording ${entry.key} holds a version the restore plan did not expect (ETag ${cleanEtag(liveStat.etag)}); it was left in place`);
        }
        const { etag, location, skipped } = await putRecordingFromBackup(
          deps,
          r,
          input.deployment,
          { key: entry.key, size: entry.restore.size, etag: entry.restore.etag, blob: entry.restore.blob, blobKey: entry.restore.blobKey },
          sources,
          { [RESTORED_BY_METADATA]: input.restoreId },
        );
        if (etag !== entry.restore.etag) await recordRestoredEtag(journal, input.deployment, input.restoreId, entry.key, etag);
        if (skipped.length > 0) {
          servedElsewhere.count += 1;
          if (servedElsewhere.examples.length < LISTED_AT_MOST) servedElsewhere.examples.push({ key: entry.key, location, skipped });
        }
      }

      let done = 0;
      let restored = 0;
      let quarantined = 0;
      let unrecoverable = 0;
      const pool = new TaskPool(deps.config.backup.concurrency);
      for await (const entry of plan()) {
        await pool.run(async () => {
          // One key at a time, in order: the live version is aside before the backup's is written over its key.
          if (entry.live) {
            await quarantine(entry as PlanEntry & { live: NonNullable<PlanEntry['live']> });
            quarantined += 1;
          }
          if (entry.restore?.unrecoverable) unrecoverable += 1;
          else if (entry.restore) {
            try {
              await restoreOne(entry as PlanEntry & { restore: NonNullable<PlanEntry['restore']> });
            } catch (err) {
              if (err instanceof RecordingUnrecoverableError) throw restoreFailure('BackupCorrupt', `${err.message}; the restore cannot complete without it`);
              throw err;
            }
            restored += 1;
          }
          if (entry.live && entry.restore) faultPoint(RESTORE_FAULT_POINTS.afterQuarantineAndRestore);
          done += 1;
          beat('recordings', done);
        });
      }
      await pool.drain();
      const unchanged = input.unchanged ?? Math.max(0, (await countObjects(r.client, r.bucket, (n) => beat('count', n))) - restored);
      return { restored, quarantined, unchanged, unrecoverable, servedElsewhere };
    },

    /**
     * Undo of restoreRecordings, from its journal, key by key: the version the restore wrote is removed, then the
     * quarantined one is put back where the key is free (or still holds the restored version), and its quarantine copy
     * is removed only once the put-back copy verifies.
     */
    async revertRecordings(input: { target: TargetName; deployment: string; restoreId: string; journal?: string }): Promise<{ removed: number; returned: number }> {
      const ctx = Context.current();
      const r = recordings(input.target);
      const journal = journalLocation(input.journal);
      const plan = await readPlan(journal, input.deployment, input.restoreId);
      if (!plan) {
        if (await journalArtifact(journal, LEGACY_PLAN_JOURNAL, input.deployment, input.restoreId)) {
          throw restoreFailure(
            'RestoreStateInvalid',
            `the recordings of restore ${input.restoreId} were planned by an earlier version, without the ETags a rollback checks against: move the objects under ${QUARANTINE_PREFIX}${input.restoreId}/ back by hand`,
          );
        }
        return { removed: 0, returned: 0 };
      }
      faultPoint(RESTORE_FAULT_POINTS.revertStart);
      let removed = 0;
      let returned = 0;
      let done = 0;
      const conflicts: string[] = [];
      let conflictCount = 0;
      const pool = new TaskPool(deps.config.backup.concurrency);
      for await (const entry of plan()) {
        await pool.run(async () => {
          if (entry.restore && !entry.restore.unrecoverable) {
            const liveStat = await statOrUndefined(r, entry.key);
            if (liveStat && (await isRestoredVersion(liveStat, entry, journal, input.deployment, input.restoreId))) {
              await r.client.removeObject(r.bucket, entry.key);
              removed += 1;
              faultPoint(RESTORE_FAULT_POINTS.afterRemoveRestored);
            }
          }
          if (entry.live) {
            const aside = quarantineKey(input.restoreId, entry.key);
            const asideStat = await statOrUndefined(r, aside);
            if (asideStat) {
              const asideVersion = { etag: cleanEtag(asideStat.etag), size: asideStat.size };
              const liveStat = await statOrUndefined(r, entry.key);
              const free = !liveStat || (await isRestoredVersion(liveStat, entry, journal, input.deployment, input.restoreId));
              if (free) {
                const copied = (await r.client.copyObject(r.bucket, entry.key, copySource(r.bucket, aside))) as { etag?: string };
                const landed = await statOrUndefined(r, entry.key);
                if (cleanEtag(copied.etag) !== asideVersion.etag || !landed || !sameVersion({ etag: landed.etag, size: landed.size }, asideVersion)) {
                  throw new Error(`the put-back copy of ${entry.key} does not verify (ETag ${cleanEtag(copied.etag)}, quarantine copy ${asideVersion.etag}); the quarantine copy ${aside} is kept`);
                }
                faultPoint(RESTORE_FAULT_POINTS.afterPutBack);
                await r.client.removeObject(r.bucket, aside);
                returned += 1;
              } else if (sameVersion({ etag: liveStat.etag, size: liveStat.size }, asideVersion)) {
                // Put back by an earlier attempt that died before removing the quarantine copy.
                await r.client.removeObject(r.bucket, aside);
                returned += 1;
              } else {
                conflictCount += 1;
                if (conflicts.length < LISTED_AT_MOST) conflicts.push(entry.key);
              }
            }
          }
          done += 1;
          if (done % 100 === 0) ctx.heartbeat({ phase: 'revert', done, removed, returned });
        });
      }
      await pool.drain();
      ctx.heartbeat({ phase: 'revert', done, removed, returned });
      if (conflictCount > 0) {
        throw restoreFailure(
          'RestoreStateInvalid',
          `${conflictCount} recording(s) hold a version neither from before the restore nor written by it, so their quarantined version was kept under ${QUARANTINE_PREFIX}${input.restoreId}/: ${conflicts.join(', ')}${conflictCount > conflicts.length ? ', …' : ''}`,
        );
      }
      return { removed, returned };
    },
  };
}

/** Objects in the bucket outside its reserved prefix, heartbeating as it counts. */
async function countObjects(client: Recordings['client'], bucket: string, onProgress: (n: number) => void): Promise<number> {
  let n = 0;
  for await (const item of client.listObjectsV2(bucket, '', true) as AsyncIterable<{ name?: string }>) {
    if (item.name && !item.name.startsWith(RESERVED_PREFIX)) {
      n += 1;
      if (n % 1000 === 0) onProgress(n);
    }
  }
  onProgress(n);
  return n;
}
