// One slice of the WAL stream: pg_receivewal on the slot into a spool, each segment (and the one being written, every
// few seconds) encrypted to every location, the high-water mark recorded; resumable from the slot, no gap.
import { Context } from '@temporalio/activity';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { encodeWalObject, putWalObject } from '../src/catalog/wal-object';
import { ensureWalKeyEpoch, type CurrentWalKey } from '../src/catalog/wal-key-epoch';
import { readWalMark, writeWalMark } from '../src/catalog/wal-mark';
import type { TargetName } from '../src/config/load';
import { connectClient } from '../src/postgres';
import { ensureReplicationSlot, sampleWalMoment, slotPosition, startWalReceiver, takeOverSlot } from '../src/postgres/wal-receiver';
import { formatLsn, parseLsn, parseSegmentName, segmentEndingAt, segmentName, segmentOf, segmentStartLsn } from '../src/postgres/wal-position';
import type { KeyRing } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { parseWalKey, walPartialKey, walPrefix, walSegmentKey, type BackupLocation } from '../src/storage';
import { pointInTimeOf } from './point-in-time-context';

export interface StreamWalInput {
  target: TargetName;
  /** Overrides deployment.pointInTime.sliceSeconds (tests use a few seconds). */
  sliceSeconds?: number;
  /** Overrides deployment.pointInTime.partialUploadSeconds. */
  partialUploadSeconds?: number;
}

export interface WalMarkSummary {
  lsn: string;
  /** ISO time of the server's clock that the stored WAL covers. */
  time: string;
}

export interface StreamWalResult {
  mark?: WalMarkSummary;
  segmentsUploaded: number;
  partialsUploaded: number;
  /** Locations that failed a write during the slice (their window shows the gap). */
  failedLocations: string[];
  /** The segment the stream started again from, the spool that held it being lost (see seedRestream). */
  restreamedFrom?: string;
  /** Why the server could not stream it again (its WAL was removed): those segments are a gap. */
  restreamRefused?: string;
}

const SEGMENT_FILE = /^[0-9A-F]{24}$/;
/** A segment pg_receivewal is still writing (preallocated to the segment's size). */
const PARTIAL_FILE = /^[0-9A-F]{24}\.partial$/;
/** How long a mark waits for the receiver to flush the position it sampled. */
const RECEIVE_WAIT_MS = 15_000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The first `length` bytes of a file (a partial segment is preallocated at full size; only its start is WAL yet). */
function readPrefix(file: string, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, 0);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

interface Slice {
  deployment: string;
  locations: BackupLocation[];
  key: CurrentWalKey;
  spool: string;
  result: StreamWalResult;
  failed: Set<string>;
}

async function uploadObject(slice: Slice, key: string, plaintext: Buffer): Promise<string[]> {
  const write = await putWalObject(slice.locations, key, encodeWalObject(plaintext, slice.key.epoch, slice.key.dataKey));
  for (const f of write.failed) slice.failed.add(f.location);
  if (write.written.length === 0) throw new Error(`${key} could be written to no location: ${write.failed.map((f) => `${f.location}: ${f.error.message}`).join('; ')}`);
  return write.written;
}

/** Removes the partials of `segment` that a newer object supersedes (those ending before `keepFrom`, or all once complete). */
async function removeSupersededPartials(slice: Slice, segment: string, keepEnd?: bigint): Promise<void> {
  await Promise.all(
    slice.locations.map(async (location) => {
      const stale: string[] = [];
      for await (const object of location.list(`${walPrefix(slice.deployment)}${segment}.`)) {
        const parsed = parseWalKey(slice.deployment, object.key);
        if (parsed?.kind === 'partial' && parsed.segment === segment && (keepEnd === undefined || parsed.endLsn < keepEnd)) stale.push(object.key);
      }
      if (stale.length) await location.delete(stale).catch(() => undefined);
    }),
  );
}

/** Uploads every complete segment in the spool, oldest first, deleting each local copy once stored. */
async function uploadCompleteSegments(slice: Slice): Promise<void> {
  const names = readdirSync(slice.spool).filter((n) => SEGMENT_FILE.test(n)).sort();
  for (const name of names) {
    const file = join(slice.spool, name);
    await uploadObject(slice, walSegmentKey(slice.deployment, name), readFileSync(file));
    rmSync(file, { force: true });
    slice.result.segmentsUploaded++;
    await removeSupersededPartials(slice, name);
  }
}

/**
 * A receiver that died (its worker SIGKILLed) may have flushed a segment to its end, so the slot moved past it, without
 * renaming its `.partial`: pg_receivewal restarts at the segment that holds the slot's position, so that segment would
 * never come again. What the slot says was flushed (--synchronous: the spool's bytes) is stored before the spool is
 * cleared: a whole segment as a segment, a part as a partial.
 */
async function storeFlushedPartials(slice: Slice, client: pg.Client, slot: string): Promise<void> {
  const flushed = (await slotPosition(client, slot))?.flushedLsn;
  if (flushed === undefined) return;
  const segmentBytes = Number((await client.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")).rows[0]!.setting);
  for (const file of readdirSync(slice.spool).filter((n) => PARTIAL_FILE.test(n)).sort()) {
    const name = file.slice(0, 24);
    const start = segmentStartLsn(parseSegmentName(name, segmentBytes), segmentBytes);
    if (flushed <= start) continue;
    const whole = start + BigInt(segmentBytes);
    const bytes = readPrefix(join(slice.spool, file), Number((flushed < whole ? flushed : whole) - start));
    if (start + BigInt(bytes.length) === whole) {
      await uploadObject(slice, walSegmentKey(slice.deployment, name), bytes);
      slice.result.segmentsUploaded++;
      await removeSupersededPartials(slice, name);
    } else {
      await uploadObject(slice, walPartialKey(slice.deployment, name, start + BigInt(bytes.length)), bytes);
      slice.result.partialsUploaded++;
      await removeSupersededPartials(slice, name, start + BigInt(bytes.length));
    }
  }
}

/**
 * A spool lost with the machine that held it (the next slice runs on another worker, or the disk is gone) took with
 * it the segments its receiver had flushed, and so moved the slot past, but not yet stored. pg_receivewal starts at
 * the oldest segment in its directory when it finds one: a `.partial` placeholder (zeros, the segment's size) of the
 * first whole segment between the newest mark and the slot that no location holds makes it stream again from there,
 * while the server still keeps that WAL (wal_keep_size, or no checkpoint since). Returns that segment, if any.
 */
async function seedRestream(slice: Slice, client: pg.Client, slot: string, keyRing: KeyRing, segmentBytes: number): Promise<string | undefined> {
  const flushed = (await slotPosition(client, slot))?.flushedLsn;
  if (flushed === undefined) return undefined;
  const marks = await Promise.all(slice.locations.map((l) => readWalMark(l, slice.deployment, keyRing).catch(() => undefined)));
  const mark = marks.filter((m) => m !== undefined).sort((a, b) => (parseLsn(b.lsn) > parseLsn(a.lsn) ? 1 : -1))[0];
  if (!mark) return undefined;
  const from = segmentEndingAt(parseLsn(mark.lsn), mark.timeline, segmentBytes).number;
  const to = segmentOf(flushed, mark.timeline, segmentBytes).number;
  for (let n = from; n < to; n++) {
    const name = segmentName({ timeline: mark.timeline, number: n }, segmentBytes);
    const held = await Promise.all(slice.locations.map((l) => l.stat(walSegmentKey(slice.deployment, name)).catch(() => undefined)));
    if (held.some((stat) => stat !== undefined)) continue;
    writeFileSync(join(slice.spool, `${name}.partial`), Buffer.alloc(segmentBytes), { mode: 0o600 });
    return name;
  }
  return undefined;
}

export function createStreamWalActivities(deps: Dependencies) {
  return {
    /**
     * Streams WAL for one slice, heartbeating with the mark, then returns; the next slice (or a retry) resumes from
     * the slot. A receiver left running by a worker that died is ended first, and segments it spooled are uploaded.
     */
    async streamWal(input: StreamWalInput): Promise<StreamWalResult> {
      const ctx = Context.current();
      const { deployment, pointInTime } = pointInTimeOf(deps, input.target);
      const sliceMs = (input.sliceSeconds ?? pointInTime.sliceSeconds) * 1000;
      const partialMs = (input.partialUploadSeconds ?? pointInTime.partialUploadSeconds) * 1000;
      const password = deps.postgresPassword(input.target);
      const keyRing = deps.keyRing();
      const spool = join(deps.config.backup.workDir, 'wal-spool', `${deployment.name}-${pointInTime.slot}`);
      mkdirSync(spool, { recursive: true, mode: 0o700 });
      chmodSync(spool, 0o700);
      const slice: Slice = {
        deployment: deployment.name,
        locations: deps.locations(),
        key: await ensureWalKeyEpoch(deps.locations(), deployment.name, keyRing, deps.now()),
        spool,
        result: { segmentsUploaded: 0, partialsUploaded: 0, failedLocations: [] },
        failed: new Set(),
      };

      await ensureReplicationSlot(deployment.postgres, password, pointInTime.slot);
      const client: pg.Client = await connectClient(deployment.postgres, password, { applicationName: 'vaultpam-backup wal stream' });
      const stop = new AbortController();
      const onCancel = () => stop.abort();
      ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
      let receiverExit: Promise<unknown> | undefined;
      try {
        await takeOverSlot(client, pointInTime.slot, spool);
        // What an earlier run spooled: complete segments are stored; partials are streamed again from the slot.
        await uploadCompleteSegments(slice);
        await storeFlushedPartials(slice, client, pointInTime.slot);
        for (const name of readdirSync(spool)) rmSync(join(spool, name), { force: true, recursive: true });
        const segmentBytes = Number((await client.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")).rows[0]!.setting);
        const restreamFrom = await seedRestream(slice, client, pointInTime.slot, keyRing, segmentBytes);

        let receiverGone: string | undefined;
        const startReceiver = () => {
          receiverGone = undefined;
          const receiver = startWalReceiver(deployment.postgres, password, pointInTime.slot, spool, stop.signal);
          receiverExit = receiver.exit.then((exit) => {
            receiverGone = `pg_receivewal stopped (${exit.signal ?? `code ${exit.code}`}): ${exit.stderrTail}`;
          });
        };
        startReceiver();
        if (restreamFrom) {
          // The server may have removed that WAL already: then the segments are lost (the window names them) and
          // the stream goes on from the slot.
          slice.result.restreamedFrom = restreamFrom;
          const settled = Date.now() + 3_000;
          while (!receiverGone && Date.now() < settled && !existsSync(join(spool, `${restreamFrom}`))) await sleep(100, stop.signal);
          if (receiverGone && /already been removed/.test(receiverGone)) {
            slice.result.restreamRefused = receiverGone;
            await receiverExit;
            for (const name of readdirSync(spool)) rmSync(join(spool, name), { force: true, recursive: true });
            startReceiver();
          }
        }
        const deadline = Date.now() + sliceMs;
        for (;;) {
          if (receiverGone && !stop.signal.aborted) throw new Error(receiverGone);
          await uploadCompleteSegments(slice);
          const moment = await sampleWalMoment(client);
          // Wait for the receiver to hold the sampled position (its flushes move the slot).
          let flushed: bigint | undefined;
          const waitUntil = Date.now() + RECEIVE_WAIT_MS;
          while (!stop.signal.aborted && !receiverGone && Date.now() < waitUntil) {
            flushed = (await slotPosition(client, pointInTime.slot))?.flushedLsn;
            if (flushed !== undefined && flushed >= moment.lsn) break;
            await sleep(50, stop.signal);
          }
          if (flushed !== undefined && flushed >= moment.lsn && !receiverGone) {
            await uploadCompleteSegments(slice);
            const segment = segmentEndingAt(moment.lsn, moment.timeline, segmentBytes);
            const name = segmentName(segment, segmentBytes);
            const partialFile = join(spool, `${name}.partial`);
            const start = segmentStartLsn(segment, segmentBytes);
            const end = flushed < start + BigInt(segmentBytes) ? flushed : start + BigInt(segmentBytes);
            let stored = slice.locations.map((l) => l.name);
            if (existsSync(partialFile)) {
              const bytes = readPrefix(partialFile, Number(end - start));
              stored = await uploadObject(slice, walPartialKey(deployment.name, name, start + BigInt(bytes.length)), bytes);
              slice.result.partialsUploaded++;
              await removeSupersededPartials(slice, name, start + BigInt(bytes.length));
            } else if (existsSync(join(spool, name))) {
              await uploadCompleteSegments(slice);
            }
            const mark = { format: 1 as const, deployment: deployment.name, slot: pointInTime.slot, timeline: moment.timeline, lsn: formatLsn(moment.lsn), time: moment.time.toISOString(), walSegmentBytes: segmentBytes };
            await Promise.all(slice.locations.filter((l) => stored.includes(l.name)).map((l) => writeWalMark(l, mark, keyRing)));
            slice.result.mark = { lsn: mark.lsn, time: mark.time };
          }
          ctx.heartbeat({ phase: 'stream', mark: slice.result.mark, segments: slice.result.segmentsUploaded, partials: slice.result.partialsUploaded });
          if (stop.signal.aborted || Date.now() >= deadline) break;
          await sleep(Math.min(partialMs, Math.max(0, deadline - Date.now())), stop.signal);
        }
        stop.abort();
        await receiverExit;
        // pg_receivewal may have finished a segment while stopping.
        await uploadCompleteSegments(slice);
      } finally {
        stop.abort();
        ctx.cancellationSignal.removeEventListener('abort', onCancel);
        await receiverExit;
        await client.end().catch(() => undefined);
        // No plaintext WAL outlives the slice, except complete segments that no location took (the retry stores them).
        for (const name of existsSync(spool) ? readdirSync(spool) : []) if (!SEGMENT_FILE.test(name)) rmSync(join(spool, name), { force: true, recursive: true });
      }
      slice.result.failedLocations = [...slice.failed];
      return slice.result;
    },
  };
}
