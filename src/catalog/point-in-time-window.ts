// The window of restorable moments: from the oldest usable base to the newest WAL mark, with every segment between.
import type { KeyRing } from '../crypto';
import { parseLsn, parseSegmentName, segmentEndingAt, segmentName, segmentOf } from '../postgres/wal-position';
import { parseWalKey, walPrefix, type BackupLocation } from '../storage';
import { listBaseManifests, type BaseManifest } from './base-manifest';
import { readWalMark, type WalMark } from './wal-mark';

/** At most this many missing segment names are listed (a count says how many in all). */
const GAP_NAMES_LISTED = 50;

export interface RestorableWindow {
  /** ISO times of the server's clock: every moment from `from` to `to` can be recovered to. */
  from: string;
  to: string;
}

export interface WindowAnswer {
  window?: RestorableWindow;
  /** Missing segments between the oldest base and the mark (the first GAP_NAMES_LISTED), and how many in all. */
  gaps: string[];
  gapCount: number;
  /** Why there is no window, when there is none. */
  reason?: string;
}

/** What one location (or the union of several) holds of the stream. */
export interface WalHoldings {
  bases: BaseManifest[];
  /** Complete segments, by name. */
  segments: Set<string>;
  /** The furthest end LSN of any partial, per segment. */
  partials: Map<string, bigint>;
  mark?: WalMark;
}

export interface LocationWindow extends WindowAnswer {
  location: string;
  mark?: { lsn: string; time: string };
  bases: number;
}

export interface PointInTimeWindow extends WindowAnswer {
  /** Each location on its own. */
  locations: LocationWindow[];
}

export async function readWalHoldings(location: BackupLocation, deployment: string, keyRing: KeyRing): Promise<WalHoldings> {
  const segments = new Set<string>();
  const partials = new Map<string, bigint>();
  for await (const object of location.list(walPrefix(deployment))) {
    const parsed = parseWalKey(deployment, object.key);
    if (parsed?.kind === 'segment') segments.add(parsed.segment);
    else if (parsed?.kind === 'partial' && parsed.endLsn > (partials.get(parsed.segment) ?? -1n)) partials.set(parsed.segment, parsed.endLsn);
  }
  const mark = await readWalMark(location, deployment, keyRing);
  return { bases: await listBaseManifests(location, deployment, keyRing), segments, partials, ...(mark ? { mark } : {}) };
}

/** The union of what several locations hold: a segment anywhere counts, the furthest mark wins. */
export function unionOfHoldings(all: readonly WalHoldings[]): WalHoldings {
  const union: WalHoldings = { bases: [], segments: new Set(), partials: new Map() };
  const bases = new Map<string, BaseManifest>();
  for (const held of all) {
    for (const base of held.bases) bases.set(base.baseId, base);
    for (const name of held.segments) union.segments.add(name);
    for (const [name, end] of held.partials) if (end > (union.partials.get(name) ?? -1n)) union.partials.set(name, end);
    if (held.mark && (!union.mark || parseLsn(held.mark.lsn) > parseLsn(union.mark.lsn))) union.mark = held.mark;
  }
  union.bases = [...bases.values()].sort((a, b) => Date.parse(a.stopTime) - Date.parse(b.stopTime));
  return union;
}

/** Whether the WAL up to `lsn` of segment `name` is held: the complete segment, or a partial reaching `lsn`. */
function holds(held: WalHoldings, name: string, upTo: bigint | undefined): boolean {
  if (held.segments.has(name)) return true;
  return upTo !== undefined && (held.partials.get(name) ?? -1n) >= upTo;
}

/** The window the holdings give, and the gaps that cut it. */
export function windowOf(held: WalHoldings): WindowAnswer {
  const mark = held.mark;
  if (!mark) return { gaps: [], gapCount: 0, reason: 'no WAL mark yet: the stream has not written here' };
  const markLsn = parseLsn(mark.lsn);
  const bytes = mark.walSegmentBytes;
  const usable = held.bases.filter((b) => b.timeline === mark.timeline && parseLsn(b.stopLsn) <= markLsn);
  if (usable.length === 0) return { gaps: [], gapCount: 0, reason: 'no base backup that the streamed WAL reaches past' };
  const first = segmentOf(usable.reduce((min, b) => (parseLsn(b.startLsn) < min ? parseLsn(b.startLsn) : min), parseLsn(usable[0]!.startLsn)), mark.timeline, bytes).number;
  const last = segmentEndingAt(markLsn, mark.timeline, bytes).number;
  const gaps: string[] = [];
  let gapCount = 0;
  let lastGap = -1n;
  for (let n = first; n <= last; n++) {
    const name = segmentName({ timeline: mark.timeline, number: n }, bytes);
    if (holds(held, name, n === last ? markLsn : undefined)) continue;
    gapCount++;
    lastGap = n;
    if (gaps.length < GAP_NAMES_LISTED) gaps.push(name);
  }
  const after = usable.filter((b) => segmentOf(parseLsn(b.startLsn), mark.timeline, bytes).number > lastGap);
  if (after.length === 0) return { gaps, gapCount, reason: `WAL segments are missing after every base backup: ${gaps.join(', ')}${gapCount > gaps.length ? ` and ${gapCount - gaps.length} more` : ''}` };
  return { window: { from: after[0]!.stopTime, to: mark.time }, gaps, gapCount };
}

/** The bases whose recovery reaches `at` with the holdings: stopped at or before it, and no gap from their start to the mark. */
export function basesFor(held: WalHoldings, at: Date): BaseManifest[] {
  const answer = windowOf(held);
  if (!answer.window || !held.mark) return [];
  const bytes = held.mark.walSegmentBytes;
  const lastGap = answer.gaps.length ? parseSegmentName(answer.gaps[answer.gaps.length - 1]!, bytes).number : -1n;
  return held.bases
    .filter((b) => Date.parse(b.stopTime) <= at.getTime() && parseLsn(b.stopLsn) <= parseLsn(held.mark!.lsn))
    .filter((b) => segmentOf(parseLsn(b.startLsn), held.mark!.timeline, bytes).number > lastGap)
    .reverse();
}

/**
 * The restorable window of a deployment: per location, and across locations (a segment missing at one location
 * but present at another is no gap). Reads listings, base manifests and marks; never a segment's content.
 */
export async function pointInTimeWindow(locations: readonly BackupLocation[], deployment: string, keyRing: KeyRing): Promise<PointInTimeWindow & { holdings: WalHoldings }> {
  const perLocation = await Promise.all(locations.map((l) => readWalHoldings(l, deployment, keyRing)));
  const union = unionOfHoldings(perLocation);
  return {
    ...windowOf(union),
    holdings: union,
    locations: perLocation.map((held, i) => ({
      location: locations[i]!.name,
      bases: held.bases.length,
      ...(held.mark ? { mark: { lsn: held.mark.lsn, time: held.mark.time } } : {}),
      ...windowOf(held),
    })),
  };
}

/**
 * The database's recovery point under point-in-time protection: the newest moment restorable from at least `copies`
 * locations each on its own (its window reaches it with no gap there), and its age. Undefined when fewer than
 * `copies` locations hold a window.
 */
export async function databaseRecoveryPoint(
  locations: readonly BackupLocation[],
  deployment: string,
  keyRing: KeyRing,
  now: Date,
  copies = 2,
): Promise<{ to: string; locations: string[]; ageSeconds: number } | undefined> {
  const { locations: perLocation } = await pointInTimeWindow(locations, deployment, keyRing);
  const held = perLocation.filter((l) => l.window).sort((a, b) => Date.parse(b.window!.to) - Date.parse(a.window!.to));
  if (held.length < copies) return undefined;
  const to = held[copies - 1]!.window!.to;
  return { to, locations: held.slice(0, copies).map((l) => l.location), ageSeconds: Math.max(0, (now.getTime() - Date.parse(to)) / 1000) };
}
