// Continuous protection of the recordings: a checkpoint lists the bucket at a measured moment, merges the listing with
// the previous checkpoint's index, seals only new or changed recordings in write-once blobs, and commits an index and a
// MACed manifest in every location (manifest last). Safe to retry or die at any line: an unfinished checkpoint is
// resumed under its own id and data key, so a blob it already wrote is found, not copied again.
import { databaseClockOf } from './point-in-time-context';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import { Meter, writeArtifactToEach } from '../src/catalog/artifacts';
import { readManifest } from '../src/catalog/catalog';
import type { Manifest } from '../src/catalog/manifest';
import { CHECKPOINT_KIND, type CheckpointManifest } from '../src/catalog/checkpoint-manifest';
import { jsonLine } from '../src/catalog/json-lines';
import { POINT_DATA_KEY_FILE, listPointIds, readPointManifest, writePointManifest } from '../src/catalog/point-in-time-catalog';
import { blobState, ownBlobOf, recordingIdentity } from '../src/catalog/recording-blobs';
import { readRecordingsIndex, type IndexEntry, type RecordingEntry } from '../src/catalog/recordings-index';
import { createEncryptStream, encryptedSize, generateDataKey, unwrapKey, wrappedKeySchema, type KeyRing } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { faultPoint } from '../src/runtime/fault-points';
import { backupsPrefix, blobKey, isNotFound, parseManifestKey, type BackupLocation } from '../src/storage';
import { putToEach } from '../src/storage/fan-out-put';
import { pointInTimeId, sweepMarkerKey } from '../src/storage/layout';
import { throttle } from '../src/storage/rate-limiter';
import { OrderedWindow } from '../src/streams/ordered-window';
import { SortedCursor } from '../src/streams/sorted-cursor';
import { readAll } from '../src/catalog/artifacts';
import { TaskPool, primaryLocation } from './backup-context';
import { CLOCK_MARKER, bucketClock } from './dump';
import { listInKeyOrder } from '../src/storage/ordered-listing';

/** Crash points of a checkpoint, for the crash tests. */
export const CHECKPOINT_FAULT_POINTS = {
  /** A new blob has just been written to every location lacking it, before the index names it. */
  afterBlobWritten: 'checkpoint-recordings:after-blob-written',
  /** The index is written everywhere; the manifest is not. */
  beforeManifest: 'checkpoint-recordings:before-manifest',
} as const;

/** The checkpoint's recordings index: the same line format as a backup's (readRecordingsIndex reads it). */
export const CHECKPOINT_INDEX = 'index.enc';
/**
 * The blobs the checkpoint sealed itself, one JSON string per line: with the previous checkpoint's blobs, every blob
 * its index names. Prune marks a chain of checkpoints by reading one index and these lists, not every index.
 */
export const CHECKPOINT_ADDED_BLOBS = 'added-blobs.enc';

/** What a checkpoint did: small, no key and no listing, fit for a workflow's history. */
export interface CheckpointRecordingsResult {
  checkpointId: string;
  /** The moment covered (the bucket's clock when the listing started). */
  coveredAt: string;
  /** The same moment on the database's clock (absent when the database could not be read): what selects it. */
  databaseAt?: string;
  objects: number;
  bytes: number;
  /** New or changed recordings this attempt copied. */
  copiedObjects: number;
  copiedBytes: number;
  /** Own blobs an earlier attempt of the same checkpoint had written whole: found, not copied again. */
  resumedObjects: number;
  /** Recordings sharing a blob through the previous index. */
  reusedObjects: number;
  newerThanPoint: number;
  /** Locations where it committed. */
  locations: string[];
  /** True when an earlier attempt's unfinished checkpoint was taken up (its blobs found, not copied again). */
  resumed: boolean;
}

export interface CheckpointRecordingsInput {
  deployment: string;
  /** Which configured deployment the name belongs to; found from the name when absent. */
  target?: TargetName;
}

/** The configured target whose deployment has this name; a name that is none of them is refused. */
export function targetOf(deps: Dependencies, deployment: string, target?: TargetName): TargetName {
  if (target) return target;
  if (deps.config.deployment.name === deployment) return 'production';
  if (deps.config.staging?.name === deployment) return 'staging';
  throw ApplicationFailure.create({
    type: 'BackupInputInvalid',
    nonRetryable: true,
    message: `deployment "${deployment}" is not configured (configured: ${[deps.config.deployment.name, deps.config.staging?.name].filter(Boolean).join(', ')})`,
  });
}

async function readWrapped(location: BackupLocation, key: string) {
  try {
    return wrappedKeySchema.parse(JSON.parse((await readAll(await location.get(key))).toString('utf8')));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The checkpoint this run writes: an unfinished one newer than every committed one, or a new one. */
async function openCheckpoint(location: BackupLocation, deployment: string, committed: string[], pending: string[], keyRing: KeyRing, now: Date) {
  const newestCommitted = committed.at(-1);
  const unfinished = pending.filter((id) => newestCommitted === undefined || id > newestCommitted).at(-1);
  if (unfinished) {
    const wrapped = await readWrapped(location, CHECKPOINT_KIND.key(deployment, unfinished, POINT_DATA_KEY_FILE));
    if (wrapped) return { id: unfinished, wrapped, dataKey: unwrapKey(wrapped, keyRing), resumed: true };
  }
  const id = pointInTimeId(now, randomBytes(3).toString('hex'));
  const dataKey = generateDataKey();
  const wrapped = keyRing.wrap(dataKey);
  // Written before any blob: a retry finds it and derives the same blob names and keys.
  await location.put(CHECKPOINT_KIND.key(deployment, id, POINT_DATA_KEY_FILE), Buffer.from(JSON.stringify(wrapped)));
  return { id, wrapped, dataKey, resumed: false };
}

/** A sweep marker ignored after this long: its prune died, and its retry writes it again. */
export const SWEEP_MARKER_STALE_MS = 6 * 3_600_000;

/** When the prune now sweeping started, or undefined when none is (a stale marker is none). */
export async function sweepInProgress(location: BackupLocation, deployment: string, now: Date): Promise<string | undefined> {
  let since: string;
  try {
    since = (JSON.parse((await readAll(await location.get(sweepMarkerKey(deployment)))).toString('utf8')) as { since: string }).since;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const age = now.getTime() - new Date(since).getTime();
  return Number.isNaN(age) || age > SWEEP_MARKER_STALE_MS ? undefined : since;
}

interface Previous {
  ref: CheckpointManifest['previous'];
  cursor: SortedCursor<IndexEntry>;
  /** Where the previous checkpoint or backup committed: its blobs are there. */
  locations: string[];
}

/** The newest backup's manifest readable somewhere, found by its id (ids sort by time) without reading every manifest. */
async function newestBackup(locations: readonly BackupLocation[], deployment: string, keyRing: KeyRing): Promise<{ manifest: Manifest; location: BackupLocation } | undefined> {
  const ids = new Set<string>();
  for (const location of locations) {
    try {
      for await (const item of location.list(backupsPrefix(deployment))) {
        const parsed = parseManifestKey(deployment, item.key);
        if (parsed) ids.add(parsed.backupId);
      }
    } catch {
      // Another location lists the same backups.
    }
  }
  for (const id of [...ids].sort().reverse()) {
    for (const location of locations) {
      const manifest = await readManifest(location, deployment, id, { keyRing }).catch(() => undefined);
      if (manifest) return { manifest, location };
    }
  }
  return undefined;
}

/**
 * What the listing is merged against: the newest committed checkpoint, or the newest backup when it is newer (the
 * first checkpoint, or one after a backup) so that a recording a backup copied is shared, not sealed again.
 */
async function previousIndex(deps: Dependencies, deployment: string, committed: string[]): Promise<Previous> {
  const keyRing = deps.keyRing();
  const locations = deps.locations();
  let checkpoint: { manifest: CheckpointManifest; location: BackupLocation } | undefined;
  for (let i = committed.length - 1; i >= 0 && !checkpoint; i--) {
    for (const location of locations) {
      const manifest = await readPointManifest(location, CHECKPOINT_KIND, deployment, committed[i]!, keyRing).catch(() => undefined);
      if (manifest) {
        checkpoint = { manifest, location };
        break;
      }
    }
  }
  const backup = await newestBackup(locations, deployment, keyRing);
  if (backup && (!checkpoint || new Date(backup.manifest.quiesce.recordingsPoint) > new Date(checkpoint.manifest.coveredAt))) {
    const dataKey = unwrapKey(backup.manifest.encryption.dataKey, keyRing);
    return {
      ref: { kind: 'backup', id: backup.manifest.backupId },
      cursor: new SortedCursor(readRecordingsIndex(backup.location, backup.manifest.artifacts.recordingsIndex, dataKey), (e) => e.key),
      locations: backup.manifest.locations.map((l) => l.name),
    };
  }
  if (!checkpoint) return { ref: undefined, cursor: SortedCursor.empty(), locations: [] };
  const dataKey = unwrapKey(checkpoint.manifest.encryption.dataKey, keyRing);
  return {
    ref: { kind: 'checkpoint', id: checkpoint.manifest.checkpointId },
    cursor: new SortedCursor(readRecordingsIndex(checkpoint.location, checkpoint.manifest.artifacts.recordingsIndex, dataKey), (e) => e.key),
    locations: checkpoint.manifest.locations.map((l) => l.name),
  };
}

/**
 * One recordings checkpoint of `deployment`. `progress` receives small heartbeat details. Memory stays flat in the
 * number of recordings: the listing and the previous index are merged as streams.
 */
export async function runRecordingsCheckpoint(
  deps: Dependencies,
  input: CheckpointRecordingsInput,
  progress: (detail: Record<string, unknown>) => void = () => {},
  signal?: AbortSignal,
): Promise<CheckpointRecordingsResult> {
  const { deployment } = input;
  const target = targetOf(deps, deployment, input.target);
  const keyRing = deps.keyRing();
  const locations = deps.locations();
  const primary = primaryLocation(deps);
  const client = deps.recordingsClient(target);
  const bucket = deps.deployment(target).recordings.bucket;
  const startedAt = deps.now();

  const { committed, pending } = await listPointIds(primary, CHECKPOINT_KIND, deployment);
  const checkpoint = await openCheckpoint(primary, deployment, committed, pending, keyRing, startedAt);
  // Its data key is written: a prune starting from now on sees this checkpoint unfinished and leaves blobs alone. One
  // that started before may be sweeping blobs this checkpoint would share or write: wait for it (a retry).
  const sweeping = await sweepInProgress(primary, deployment, startedAt);
  if (sweeping) {
    throw ApplicationFailure.create({ type: 'PruneSweeping', message: `prune has been sweeping the blobs of ${deployment} since ${sweeping}; the checkpoint starts once it is done` });
  }
  const previous = await previousIndex(deps, deployment, committed);
  // A location the previous checkpoint did not commit at may lack some of its blobs: shared ones are looked for there.
  const catchUp = locations.filter((l) => !previous.locations.includes(l.name));
  const coveredAt = await bucketClock(deps, target);
  const databaseAt = await databaseClockOf(deps, target);
  const point = new Date(coveredAt).getTime();

  const state = { listed: 0, objects: 0, bytes: 0, copiedObjects: 0, copiedBytes: 0, resumedObjects: 0, reusedObjects: 0, newerThanPoint: 0 };
  const beat = (phase: string) => progress({ phase, checkpointId: checkpoint.id, ...state });
  const dropped = new Map<string, string>();
  const drop = (name: string, err: Error) => {
    if (name === primary.name) throw err;
    if (!dropped.has(name)) dropped.set(name, err.message);
  };

  /** Seals the recording under `sealKey` into `name` at each of `at` that lacks it (all of `at` when `lookFirst` is false). */
  async function seal(entry: RecordingEntry, name: string, sealKey: Buffer, at: BackupLocation[], lookFirst: boolean): Promise<boolean> {
    const key = blobKey(deployment, name);
    const lacking: BackupLocation[] = [];
    for (const location of at) {
      if (dropped.has(location.name)) continue;
      if (!lookFirst) {
        lacking.push(location);
        continue;
      }
      try {
        const found = await blobState(location, key, sealKey);
        if (!(found && found.sealed && found.size === encryptedSize(entry.size))) lacking.push(location);
      } catch (err) {
        drop(location.name, err as Error);
      }
    }
    if (lacking.length === 0) return false;
    const source = await client.getObject(bucket, entry.key);
    const meter = new Meter(() => beat('copy'), false);
    const limiter = deps.recordingsLimiter(target);
    const read = limiter ? source.pipe(throttle(limiter)) : source;
    const body = read.pipe(meter).pipe(createEncryptStream(sealKey));
    for (const stage of new Set([source, read])) stage.on('error', (err) => body.destroy(err));
    const result = await putToEach(lacking, key, body, encryptedSize(entry.size));
    faultPoint(CHECKPOINT_FAULT_POINTS.afterBlobWritten);
    for (const failed of result.failed) drop(failed.location, failed.error);
    if (meter.bytes !== entry.size) throw new Error(`recording ${entry.key} changed while it was copied (${meter.bytes} bytes read, ${entry.size} listed)`);
    return true;
  }

  async function place(entry: RecordingEntry, held: IndexEntry | undefined): Promise<IndexEntry> {
    if (held) {
      // Shared through the previous index: no request at a location it committed at.
      if (catchUp.length) await seal(entry, held.blob, Buffer.from(held.blobKey, 'base64'), catchUp, true);
      state.reusedObjects += 1;
      return { ...entry, blob: held.blob, blobKey: held.blobKey };
    }
    const own = ownBlobOf(checkpoint.dataKey, entry);
    // A first attempt's blob names are new (they bind a fresh data key): written without asking. A resumed one looks.
    const copied = await seal(entry, own.blob, own.blobKey, locations, checkpoint.resumed);
    addedBlobs.write(jsonLine(own.blob));
    if (copied) {
      state.copiedObjects += 1;
      state.copiedBytes += entry.size;
    } else state.resumedObjects += 1;
    return { ...entry, blob: own.blob, blobKey: own.blobKey.toString('base64') };
  }

  const transfers = new TaskPool(deps.config.backup.concurrency);
  const window = new OrderedWindow<IndexEntry>(deps.config.backup.concurrency * 8);
  const markerFolder = CLOCK_MARKER.split('/')[0]!;
  async function* indexLines(): AsyncGenerator<Buffer> {
    // In key order, several prefixes (a day's folder each) listed at once ahead of the merge.
    const listing = listInKeyOrder(client, bucket, { concurrency: deps.config.backup.listingConcurrency });
    for await (const item of listing) {
      if (signal?.aborted) throw signal.reason;
      if (!item.name || item.name.startsWith(markerFolder)) continue;
      state.listed += 1;
      if (state.listed % 1000 === 0) beat('listing');
      // Written after the moment measured: the next checkpoint takes it.
      if (item.lastModified && item.lastModified.getTime() > point) {
        state.newerThanPoint += 1;
        continue;
      }
      const entry: RecordingEntry = { key: item.name, size: item.size ?? 0, etag: (item.etag ?? '').replace(/"/g, '') };
      state.objects += 1;
      state.bytes += entry.size;
      const candidate = await previous.cursor.seek(entry.key);
      const held = candidate && recordingIdentity(candidate) === recordingIdentity(entry) ? candidate : undefined;
      for (const line of await window.push(transfers.call(() => place(entry, held)))) yield jsonLine(line);
    }
    for (const line of await window.drain()) yield jsonLine(line);
  }

  beat('listing');
  const options = signal ? { signal } : {};
  // Written beside the index in the same pass: a line per own blob as its copy finishes.
  const addedBlobs = new PassThrough();
  const addedWrite = writeArtifactToEach(locations, CHECKPOINT_KIND.key(deployment, checkpoint.id, CHECKPOINT_ADDED_BLOBS), addedBlobs, checkpoint.dataKey, options);
  addedWrite.catch(() => undefined);
  let index: Awaited<ReturnType<typeof writeArtifactToEach>>;
  try {
    index = await writeArtifactToEach(locations, CHECKPOINT_KIND.key(deployment, checkpoint.id, CHECKPOINT_INDEX), Readable.from(indexLines()), checkpoint.dataKey, options);
  } catch (err) {
    addedBlobs.destroy(err as Error);
    throw err;
  } finally {
    await previous.cursor.close();
  }
  addedBlobs.end();
  const added = await addedWrite;
  for (const failed of [...index.failed, ...added.failed]) drop(failed.location, failed.error);
  const committing = locations.filter((l) => index.written.includes(l.name) && added.written.includes(l.name) && !dropped.has(l.name));
  faultPoint(CHECKPOINT_FAULT_POINTS.beforeManifest);

  const manifest: CheckpointManifest = {
    format: 1,
    kind: 'recordings-checkpoint',
    deployment,
    checkpointId: checkpoint.id,
    startedAt: startedAt.toISOString(),
    committedAt: deps.now().toISOString(),
    coveredAt,
    ...(databaseAt ? { databaseAt } : {}),
    ...(previous.ref ? { previous: previous.ref } : {}),
    encryption: { cipher: 'AES-256-GCM', framing: 'VPB1', dataKey: checkpoint.wrapped },
    artifacts: { recordingsIndex: index.artifact, addedBlobs: added.artifact },
    recordings: {
      objects: state.objects,
      bytes: state.bytes,
      // Sealed in this checkpoint's own blobs, whichever attempt wrote them.
      copiedObjects: state.copiedObjects + state.resumedObjects,
      copiedBytes: state.copiedBytes,
      reusedObjects: state.reusedObjects,
      newerThanPoint: state.newerThanPoint,
    },
    locations: committing.map((l) => ({ name: l.name, region: l.region })),
  };
  // The commit point: the primary last, so a checkpoint the next run merges against is whole wherever it is named.
  const others = committing.filter((l) => l.name !== primary.name);
  const written = await writePointManifest([...others, primary], CHECKPOINT_KIND, manifest, keyRing);
  if (!written.written.includes(primary.name)) throw written.failed.find((f) => f.location === primary.name)!.error;
  beat('committed');
  return {
    checkpointId: checkpoint.id,
    coveredAt,
    ...(databaseAt ? { databaseAt } : {}),
    objects: state.objects,
    bytes: state.bytes,
    copiedObjects: state.copiedObjects,
    copiedBytes: state.copiedBytes,
    resumedObjects: state.resumedObjects,
    reusedObjects: state.reusedObjects,
    newerThanPoint: state.newerThanPoint,
    locations: committing.filter((l) => written.written.includes(l.name)).map((l) => l.name),
    resumed: checkpoint.resumed,
  };
}

export function createCheckpointRecordingsActivities(deps: Dependencies) {
  return {
    /** One recordings checkpoint; heartbeats its progress; safe to retry (it resumes its own unfinished checkpoint). */
    async checkpointRecordings(input: CheckpointRecordingsInput): Promise<CheckpointRecordingsResult> {
      const ctx = Context.current();
      return runRecordingsCheckpoint(deps, input, (detail) => ctx.heartbeat(detail), ctx.cancellationSignal);
    },
  };
}
