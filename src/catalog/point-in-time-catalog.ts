// The catalog of checkpoints and connector exports: their manifests in the locations, read authenticated, and the one
// in force at a moment.
import type { KeyRing } from '../crypto';
import type { BackupLocation } from '../storage';
import { POINT_MANIFEST, parsePointInTimeKey } from '../storage/layout';
import { readTextIfPresent } from './artifacts';
import { CHECKPOINT_KIND, type PointKind } from './checkpoint-manifest';
import { checkDocumentMac, sealDocument, type DocumentMac } from './manifest-mac';

/** The file beside a checkpoint's or export's artifacts holding its data key wrapped, from its first attempt on. */
export const POINT_DATA_KEY_FILE = 'data-key.json';

export interface PointEntry<M> {
  id: string;
  manifest: M;
  /** Locations where the manifest reads and authenticates, in configuration order. */
  locations: string[];
  /** Manifests that could not be read or failed their MAC, by location. */
  problems: { location: string; message: string }[];
}

/** A moment outside what the checkpoints or exports cover; the message names the covered range. */
export class MomentOutOfRangeError extends Error {
  override readonly name = 'MomentOutOfRangeError';
  constructor(
    readonly what: string,
    readonly at: string,
    readonly range: { oldest: string; newest: string } | undefined,
  ) {
    super(
      range
        ? `no ${what} at or before ${at}: the ${what}s cover ${range.oldest} to ${range.newest}; choose a moment in that range`
        : `no ${what} at or before ${at}: there is no ${what} yet`,
    );
  }
}

/**
 * Ids of one kind at a location, ascending: committed (a manifest), pending (a data key, no manifest yet: a later run
 * may resume it) and unfinished (any file, no manifest).
 */
export async function listPointIds(location: BackupLocation, kind: PointKind<unknown>, deployment: string): Promise<{ committed: string[]; pending: string[]; unfinished: string[] }> {
  const manifests = new Set<string>();
  const keys = new Set<string>();
  const any = new Set<string>();
  const prefix = kind.prefix(deployment);
  for await (const item of location.list(prefix)) {
    const parsed = parsePointInTimeKey(prefix, item.key);
    if (!parsed) continue;
    any.add(parsed.id);
    if (parsed.file === POINT_MANIFEST) manifests.add(parsed.id);
    else if (parsed.file === POINT_DATA_KEY_FILE) keys.add(parsed.id);
  }
  const committed = [...manifests].sort();
  const pending = [...keys].filter((id) => !manifests.has(id)).sort();
  const unfinished = [...any].filter((id) => !manifests.has(id)).sort();
  return { committed, pending, unfinished };
}

/** The manifest of `id` at `location`, parsed and authenticated; undefined when absent. Throws when edited or moved. */
export async function readPointManifest<M>(location: BackupLocation, kind: PointKind<M>, deployment: string, id: string, keyRing: KeyRing): Promise<M | undefined> {
  const key = kind.key(deployment, id, POINT_MANIFEST);
  const where = `${location.describe()}/${key}`;
  const text = await readTextIfPresent(location, key);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`the ${kind.what} manifest at ${where} is not JSON`);
  }
  const parsed = kind.schema.safeParse(json);
  if (!parsed.success) throw new Error(`the ${kind.what} manifest at ${where} does not fit its format: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const manifest = parsed.data;
  if (kind.deploymentOf(manifest) !== deployment || kind.idOf(manifest) !== id) {
    throw new Error(`the ${kind.what} manifest at ${where} describes ${kind.idOf(manifest)} of ${kind.deploymentOf(manifest)}: it was moved or edited`);
  }
  checkDocumentMac(manifest as { authentication?: DocumentMac }, kind.label, keyRing, where);
  return manifest;
}

/** Seals the manifest under the active master key and writes it at each location (the commit point); returns where it landed. */
export async function writePointManifest<M>(
  locations: readonly BackupLocation[],
  kind: PointKind<M>,
  manifest: M,
  keyRing: KeyRing,
): Promise<{ sealed: M; written: string[]; failed: { location: string; error: Error }[] }> {
  const id = kind.idOf(manifest);
  const deployment = kind.deploymentOf(manifest);
  const key = kind.key(deployment, id, POINT_MANIFEST);
  const sealed = sealDocument(manifest as M & { authentication?: DocumentMac }, kind.label, keyRing, key) as M;
  const body = Buffer.from(JSON.stringify(sealed, null, 2));
  const written: string[] = [];
  const failed: { location: string; error: Error }[] = [];
  for (const location of locations) {
    try {
      await location.put(key, body);
      written.push(location.name);
    } catch (err) {
      failed.push({ location: location.name, error: err as Error });
    }
  }
  return { sealed, written, failed };
}

/**
 * Every committed id of one kind across the locations, newest moment first, each with the locations where its manifest
 * authenticates. `strict`: a location that cannot be listed, or a manifest that cannot be read or authenticated, is an
 * error, for whoever deletes by what is absent (retention must not take an outage or an edit for absence).
 */
export async function listPoints<M>(locations: readonly BackupLocation[], kind: PointKind<M>, deployment: string, keyRing: KeyRing, options: { strict?: boolean } = {}): Promise<PointEntry<M>[]> {
  const entries = new Map<string, PointEntry<M>>();
  for (const location of locations) {
    let ids: string[];
    try {
      ids = (await listPointIds(location, kind as PointKind<unknown>, deployment)).committed;
    } catch (err) {
      if (options.strict) throw err;
      continue;
    }
    for (const id of ids) {
      const entry: { id: string; manifest: M | undefined; locations: string[]; problems: { location: string; message: string }[] } = entries.get(id) ?? { id, manifest: undefined, locations: [], problems: [] };
      try {
        const manifest = await readPointManifest(location, kind, deployment, id, keyRing);
        if (manifest) {
          entry.manifest ??= manifest;
          entry.locations.push(location.name);
        }
      } catch (err) {
        if (options.strict) throw err;
        entry.problems.push({ location: location.name, message: (err as Error).message });
      }
      entries.set(id, entry as PointEntry<M>);
    }
  }
  return [...entries.values()]
    .filter((e) => e.manifest !== undefined)
    .sort((a, b) => compareMoments(kind.momentOf(b.manifest), kind.momentOf(a.manifest)) || (a.id < b.id ? 1 : -1));
}

function compareMoments(a: string, b: string): number {
  return new Date(a).getTime() - new Date(b).getTime();
}

/** An id's start time (its first 19 characters), for skipping ids that cannot be at or before a moment. */
export function pointIdTime(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(id);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7])) : Number.NaN;
}

/** How far an id's start time (the worker's clock) may run ahead of its moment (the bucket's clock) and still be looked at. */
const CLOCK_SLACK_MS = 15 * 60_000;

export interface PointAt<M> {
  id: string;
  manifest: M;
  /** The locations whose manifest of it authenticates, in configuration order: read from the first, fall back to the next. */
  locations: BackupLocation[];
  /** Locations passed over, and why. */
  skipped: { location: string; message: string }[];
}

/**
 * The newest id of `kind` whose moment is at or before `at`, read from the first location where its manifest
 * authenticates (the others that authenticate follow, for a reader to fall back to per object). Reads manifests
 * newest first from the newest id that can qualify, so the cost follows how far back `at` is, not the whole history.
 * Throws MomentOutOfRangeError naming the covered range when none qualifies.
 */
export async function pointAt<M>(locations: readonly BackupLocation[], kind: PointKind<M>, deployment: string, at: Date, keyRing: KeyRing): Promise<PointAt<M>> {
  const ids = new Set<string>();
  for (const location of locations) {
    try {
      for (const id of (await listPointIds(location, kind as PointKind<unknown>, deployment)).committed) ids.add(id);
    } catch {
      // A location that cannot be listed is passed over: another holds the same manifests.
    }
  }
  const sorted = [...ids].sort();
  const authenticated = async (id: string): Promise<PointAt<M> | undefined> => {
    const found: BackupLocation[] = [];
    const skipped: { location: string; message: string }[] = [];
    let manifest: M | undefined;
    for (const location of locations) {
      try {
        const read = await readPointManifest(location, kind, deployment, id, keyRing);
        if (!read) continue;
        manifest ??= read;
        found.push(location);
      } catch (err) {
        skipped.push({ location: location.name, message: (err as Error).message });
      }
    }
    return manifest ? { id, manifest, locations: found, skipped } : undefined;
  };
  for (let i = sorted.length - 1; i >= 0; i--) {
    const id = sorted[i]!;
    if (pointIdTime(id) - CLOCK_SLACK_MS > at.getTime()) continue;
    const candidate = await authenticated(id);
    if (candidate && new Date(kind.momentOf(candidate.manifest)).getTime() <= at.getTime()) return candidate;
  }
  let range: { oldest: string; newest: string } | undefined;
  let oldest: string | undefined;
  for (const id of sorted) {
    const read = await authenticated(id);
    if (read) {
      oldest = kind.momentOf(read.manifest);
      break;
    }
  }
  for (let i = sorted.length - 1; oldest !== undefined && i >= 0; i--) {
    const read = await authenticated(sorted[i]!);
    if (read) {
      range = { oldest, newest: kind.momentOf(read.manifest) };
      break;
    }
  }
  throw new MomentOutOfRangeError(kind.what, at.toISOString(), range);
}

/**
 * The newest id of `kind` whose manifest authenticates in at least `copies` locations, looking newest first and
 * stopping there (the cost is the listings and a few manifests, whatever the history's length); undefined when none.
 */
export async function newestPointHeld<M>(locations: readonly BackupLocation[], kind: PointKind<M>, deployment: string, keyRing: KeyRing, copies = 2): Promise<PointEntry<M> | undefined> {
  const ids = new Set<string>();
  for (const location of locations) {
    try {
      for (const id of (await listPointIds(location, kind as PointKind<unknown>, deployment)).committed) ids.add(id);
    } catch {
      // An unlistable location holds nothing that counts.
    }
  }
  for (const id of [...ids].sort().reverse()) {
    const entry: { id: string; manifest: M | undefined; locations: string[]; problems: { location: string; message: string }[] } = { id, manifest: undefined, locations: [], problems: [] };
    for (const location of locations) {
      try {
        const manifest = await readPointManifest(location, kind, deployment, id, keyRing);
        if (!manifest) continue;
        entry.manifest ??= manifest;
        entry.locations.push(location.name);
      } catch (err) {
        entry.problems.push({ location: location.name, message: (err as Error).message });
      }
    }
    if (entry.manifest && entry.locations.length >= copies) return entry as PointEntry<M>;
  }
  return undefined;
}

/**
 * The recovery point of the recordings: the age at `now` of the moment covered by the newest checkpoint whose
 * manifest authenticates in at least two locations; undefined when there is none.
 */
export async function recordingsRecoveryPoint(
  locations: readonly BackupLocation[],
  deployment: string,
  keyRing: KeyRing,
  now: Date,
): Promise<{ checkpointId: string; coveredAt: string; locations: string[]; ageSeconds: number } | undefined> {
  const newest = await newestPointHeld(locations, CHECKPOINT_KIND, deployment, keyRing, 2);
  if (!newest) return undefined;
  const ageSeconds = Math.max(0, (now.getTime() - new Date(newest.manifest.coveredAt).getTime()) / 1000);
  return { checkpointId: newest.id, coveredAt: newest.manifest.coveredAt, locations: newest.locations, ageSeconds };
}

/** Which checkpoints or exports the point-in-time window lets go: pure, so the window is tested without storage. */
export function selectExpiredPoints<M>(entries: readonly PointEntry<M>[], kind: PointKind<M>, windowDays: number, now: Date): PointEntry<M>[] {
  // `entries` newest first. Kept: the newest always; everything inside the window; and the newest at or before the
  // window's start, without which the window's first moments would have nothing to restore from.
  const start = now.getTime() - windowDays * 86_400_000;
  let anchorKept = false;
  const expired: PointEntry<M>[] = [];
  entries.forEach((entry, i) => {
    const moment = new Date(kind.momentOf(entry.manifest)).getTime();
    if (moment > start) return;
    if (i === 0 || !anchorKept) {
      anchorKept = true;
      return;
    }
    expired.push(entry);
  });
  return expired;
}
