// Point-in-time recovery in a scratch instance: the nearest base at or before the moment, the WAL after it, replayed
// up to the moment by PostgreSQL itself; and the discarding of that instance.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openArtifact } from '../src/catalog/artifacts';
import { pointInTimeWindow, basesFor } from '../src/catalog/point-in-time-window';
import { readBaseManifest } from '../src/catalog/base-manifest';
import { readWalObject, type WalObjectReader } from '../src/catalog/wal-object';
import type { TargetName } from '../src/config/load';
import { unwrapKey } from '../src/crypto';
import { parseLsn, segmentEndingAt, segmentName, segmentOf } from '../src/postgres/wal-position';
import { discardScratchDir, dropReplayedSegments, endOfWal, extractBaseTar, freePort, offerWalSegment, prepareScratchDir, requestedSegment, scratchPaths, startScratchInstance, waitForPromotion, writeRecoverySettings } from '../src/postgres/scratch-instance';
import type { Dependencies } from '../src/runtime/dependencies';
import { isNotFound, parseWalKey, walPartialKey, walPrefix, walSegmentKey, type BackupLocation } from '../src/storage';
import { POINT_IN_TIME_GAP, POINT_IN_TIME_OUTSIDE_WINDOW, pointInTimeOf } from './point-in-time-context';

export interface RecoverToMomentInput {
  target: TargetName;
  /** The moment (ISO 8601, the database's commit time) to recover to. */
  at: string;
  /** Names the scratch instance; the same id on a retry replaces what an earlier attempt left. */
  scratchId: string;
  /** Where scratch instances live. @default <os tmpdir>/vaultpam-backup-scratch */
  scratchRoot?: string;
  /** @default 600 */
  recoveryTimeoutSeconds?: number;
}

export interface ScratchInstance {
  scratchId: string;
  host: string;
  port: number;
  /** The deployment's database, as of the moment; the user and password are the deployment's own. */
  database: string;
  user: string;
  baseId: string;
  /** Segments fetched, and how many came from a location other than the first tried. */
  segments: number;
  fallbacks: number;
}

export interface DiscardScratchInstanceInput {
  scratchId: string;
  scratchRoot?: string;
}

/** The partial objects of `segment` at any location, the furthest first. */
async function partialsOf(locations: readonly BackupLocation[], deployment: string, segment: string): Promise<string[]> {
  const ends = new Set<bigint>();
  for (const location of locations) {
    for await (const object of location.list(`${walPrefix(deployment)}${segment}.`)) {
      const parsed = parseWalKey(deployment, object.key);
      if (parsed?.kind === 'partial' && parsed.segment === segment) ends.add(parsed.endLsn);
    }
  }
  return [...ends].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)).map((end) => walPartialKey(deployment, segment, end));
}

export const DEFAULT_SCRATCH_ROOT = join(tmpdir(), 'vaultpam-backup-scratch');
/** Segments fetched ahead of the one PostgreSQL asks for: the transfer overlaps the replay, the disk holds a few. */
const WAL_LOOKAHEAD = 3n;

/**
 * Recovers the deployment's cluster as of `at` into a new scratch instance (0700 data directory, a free port) and
 * returns how to reach it; `beat` is called through every phase (the base, each segment, the replay). A moment
 * outside the covered window is refused, naming the window and any gap.
 */
export async function recoverScratchInstance(
  deps: Dependencies,
  input: RecoverToMomentInput,
  beat: (details: Record<string, unknown>) => void,
  options: { gapsRetryable?: boolean } = {},
): Promise<ScratchInstance> {
  const { deployment } = pointInTimeOf(deps, input.target);
  const at = new Date(input.at);
  if (Number.isNaN(at.getTime())) throw ApplicationFailure.create({ type: 'InputInvalid', message: `the moment to recover to is not a time: ${JSON.stringify(input.at)} (give ISO 8601, e.g. 2026-12-02T04:30:00Z)`, nonRetryable: true });
  const locations = deps.locations();
  const keyRing = deps.keyRing();
  const name = deployment.name;
  const window = await pointInTimeWindow(locations, name, keyRing);
  const gapText = window.gapCount ? `; missing WAL segments: ${window.gaps.join(', ')}${window.gapCount > window.gaps.length ? ` and ${window.gapCount - window.gaps.length} more` : ''}` : '';
  if (!window.window || at < new Date(window.window.from) || at > new Date(window.window.to)) {
    const covered = window.window ? `the covered window is ${window.window.from} to ${window.window.to}` : `no window is covered (${window.reason})`;
    // A caller that found the moment covered before (a restore's preflight) may meet a gap the stream is still
    // closing (a slice resumed after a crash uploads what the dead one left): worth retrying, unlike a moment outside.
    const transient = options.gapsRetryable === true && window.gapCount > 0;
    throw ApplicationFailure.create({ type: transient ? POINT_IN_TIME_GAP : POINT_IN_TIME_OUTSIDE_WINDOW, message: `${input.at} is outside what point-in-time protection of ${name} covers: ${covered}${gapText}`, nonRetryable: !transient });
  }
  const held = window.holdings;
  const mark = held.mark!;
  const base = basesFor(held, at)[0];
  if (!base) throw ApplicationFailure.create({ type: POINT_IN_TIME_OUTSIDE_WINDOW, message: `no base backup of ${name} reaches ${input.at} without a gap${gapText}`, nonRetryable: true });

  const paths = await prepareScratchDir(input.scratchRoot ?? DEFAULT_SCRATCH_ROOT, input.scratchId);
  try {
    // The base, from the first location whose copy opens and matches its checksum.
    const failures: string[] = [];
    let restored = false;
    for (const location of locations) {
      try {
        const manifest = await readBaseManifest(location, name, base.baseId, keyRing);
        if (!manifest) throw new Error('not there');
        const tar = await openArtifact(location, { key: manifest.tar.key, size: manifest.tar.size, sha256: manifest.tar.sha256 } as Parameters<typeof openArtifact>[1], unwrapKey(manifest.dataKey, keyRing));
        // tar unpacks a large base in silence: the heartbeat goes on meanwhile, with the bytes read so far.
        let read = 0;
        const beatBase = () => beat({ phase: 'base', baseId: base.baseId, location: location.name, bytes: read, of: manifest.tar.size });
        beatBase();
        const beating = setInterval(beatBase, 1000);
        try {
          await extractBaseTar(tar, paths.data, (bytes) => (read = bytes));
        } finally {
          clearInterval(beating);
        }
        restored = true;
        break;
      } catch (err) {
        failures.push(`${location.name}: ${(err as Error).message}`);
        await prepareScratchDir(input.scratchRoot ?? DEFAULT_SCRATCH_ROOT, input.scratchId);
      }
    }
    if (!restored) throw new Error(`base backup ${base.baseId} could be read from no location: ${failures.join('; ')}`);

    // The WAL from the base's start towards the mark, fed to PostgreSQL as it asks (restore_command names each segment
    // it wants): a few segments ahead of its request, each from the first location that holds it whole and authentic;
    // the last one may be a partial, padded to a segment as PostgreSQL expects. Replay stops at the moment, so the
    // segments after it are never fetched, and those replayed are deleted: the scratch disk holds a few segments.
    const reader: WalObjectReader = { keyRing, deployment: name, keyLocations: locations, keyCache: new Map() };
    const bytes = mark.walSegmentBytes;
    const first = segmentOf(parseLsn(base.startLsn), mark.timeline, bytes).number;
    const last = segmentEndingAt(parseLsn(mark.lsn), mark.timeline, bytes).number;
    let fallbacks = 0;
    let fetched = 0;
    const fetchSegment = async (n: bigint): Promise<void> => {
      const segment = segmentName({ timeline: mark.timeline, number: n }, bytes);
      // Partials are listed now, not taken from the window's listing: a running stream supersedes them as it goes.
      const candidates = [walSegmentKey(name, segment), ...(n === last ? await partialsOf(locations, name, segment) : [])];
      let content: Buffer | undefined;
      const why: string[] = [];
      for (const key of candidates) {
        for (const [index, location] of locations.entries()) {
          try {
            content = await readWalObject(location, key, reader);
            if (index > 0) fallbacks++;
            break;
          } catch (err) {
            if (!isNotFound(err)) why.push(`${location.name}: ${(err as Error).message}`);
          }
        }
        if (content) break;
      }
      if (!content) throw new Error(`WAL segment ${segment} could be read from no location${why.length ? `: ${why.join('; ')}` : ''}`);
      if (content.length < bytes) content = Buffer.concat([content, Buffer.alloc(bytes - content.length)]);
      offerWalSegment(paths, segment, content);
      fetched += 1;
      beat({ phase: 'wal', segment });
    };

    const port = await freePort();
    writeRecoverySettings(paths, at.toISOString(), port);
    await startScratchInstance(paths, deployment.postgres);
    const connection = { ...deployment.postgres, host: '127.0.0.1', port };
    const feeding = { stop: false };
    const feeder = (async () => {
      for (let n = first; n <= last && !feeding.stop; ) {
        const wanted = requestedSegment(paths, bytes);
        const asked = wanted && wanted.timeline === mark.timeline ? wanted.number : first - 1n;
        if (n > asked + WAL_LOOKAHEAD) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          continue;
        }
        await fetchSegment(n);
        n += 1n;
        dropReplayedSegments(paths, bytes, asked);
      }
      endOfWal(paths);
    })();
    // A segment that cannot be read ends the feed at once: PostgreSQL then stops short of the moment, and the reason is this.
    const fed = feeder.catch((err: unknown) => {
      endOfWal(paths);
      throw err;
    });
    try {
      await Promise.race([
        waitForPromotion(paths, connection, deps.postgresPassword(input.target), () => beat({ phase: 'recovery', port, segments: fetched }), (input.recoveryTimeoutSeconds ?? 600) * 1000),
        fed.then(() => new Promise<never>(() => undefined)),
      ]);
    } finally {
      feeding.stop = true;
      await fed.catch(() => undefined);
    }
    await fed;
    return { scratchId: input.scratchId, host: '127.0.0.1', port, database: deployment.postgres.database, user: deployment.postgres.user, baseId: base.baseId, segments: fetched, fallbacks };
  } catch (err) {
    await discardScratchDir(paths, deployment.postgres);
    throw err;
  }
}

export function createRecoverToMomentActivities(deps: Dependencies) {
  return {
    /** Recovers the cluster as of `at` into a scratch instance left running for the caller (recoverScratchInstance). */
    async recoverToMoment(input: RecoverToMomentInput): Promise<ScratchInstance> {
      const ctx = Context.current();
      return recoverScratchInstance(deps, input, (details) => ctx.heartbeat(details));
    },

    /** Stops a scratch instance and removes its directory; nothing there is not an error. */
    async discardScratchInstance(input: DiscardScratchInstanceInput): Promise<void> {
      await discardScratchDir(scratchPaths(input.scratchRoot ?? DEFAULT_SCRATCH_ROOT, input.scratchId));
    },
  };
}
