// The storage format of point-in-time protection: WAL keys and names, WAL objects that open on their own, MACed records.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readWalMark, writeWalMark } from '../../src/catalog/wal-mark';
import { encodeWalObject, putWalObject, readWalObject } from '../../src/catalog/wal-object';
import { ensureWalKeyEpoch, readWalKeyEpoch } from '../../src/catalog/wal-key-epoch';
import { readAll } from '../../src/catalog/artifacts';
import { CHECKPOINT_KIND, type CheckpointManifest } from '../../src/catalog/checkpoint-manifest';
import { pointAt, writePointManifest } from '../../src/catalog/point-in-time-catalog';
import { pointInTimeId } from '../../src/storage/layout';
import { rewrapPointInTimeKeys } from '../../src/catalog/rewrap-point-in-time-keys';
import { KeyRing } from '../../src/crypto';
import { formatLsn, parseLsn, parseSegmentName, segmentEndingAt, segmentName, segmentOf } from '../../src/postgres/wal-position';
import { FilesystemLocation, baseManifestKey, parseBaseManifestKey, parseWalKey, walKeyEpochKey, walMarkKey, walPartialKey, walSegmentKey } from '../../src/storage';

const ringA = new KeyRing({ activeKeyId: 'a', keys: new Map([['a', randomBytes(32)]]) });
const root = mkdtempSync(join(tmpdir(), 'pitr-format-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('point-in-time storage format', () => {
  it('spells out WAL and base keys and parses only those', () => {
    expect(walSegmentKey('prod', '000000010000000000000003')).toBe('prod/wal/000000010000000000000003');
    expect(walPartialKey('prod', '000000010000000000000003', 0x3012345n)).toBe('prod/wal/000000010000000000000003.0000000003012345.partial');
    expect(parseWalKey('prod', walPartialKey('prod', '000000010000000000000003', 0x3012345n))).toEqual({ kind: 'partial', segment: '000000010000000000000003', endLsn: 0x3012345n });
    expect(parseWalKey('prod', walSegmentKey('prod', '000000010000000000000003'))).toEqual({ kind: 'segment', segment: '000000010000000000000003' });
    expect(parseWalKey('prod', walMarkKey('prod'))).toBeUndefined();
    expect(parseWalKey('prod', walKeyEpochKey('prod', 'e1'))).toBeUndefined();
    expect(parseBaseManifestKey('prod', baseManifestKey('prod', 'b1'))).toEqual({ baseId: 'b1' });
    expect(() => walSegmentKey('prod', '00000001000000000000003')).toThrow(/24 upper-case hex/);
  });

  it('maps LSNs to segment names and back', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    const seg = segmentOf(0x16b374d848n, 1);
    expect(segmentName(seg)).toBe('0000000100000016000000B3');
    expect(parseSegmentName('0000000100000016000000B3')).toEqual(seg);
    expect(segmentName({ timeline: 1, number: parseSegmentName('0000000100000016000000FF').number + 1n })).toBe('000000010000001700000000');
    expect(segmentName(segmentEndingAt(0x17000000n, 1))).toBe('000000010000000000000016');
    expect(() => parseLsn('nope')).toThrow(/not a WAL position/);
  });

  it('opens each WAL object from its location and the master key, and after a rotation that rewrapped only the epoch', async () => {
    const location = new FilesystemLocation({ name: 'one', region: 'eu', kind: 'filesystem', path: root, prefix: 'a' });
    const now = new Date('2026-01-01T00:00:00Z');
    const current = await ensureWalKeyEpoch([location], 'prod', ringA, now);
    expect((await ensureWalKeyEpoch([location], 'prod', ringA, new Date(now.getTime() + 60_000))).epoch).toBe(current.epoch);
    const segment = randomBytes(100_000);
    const key = walSegmentKey('prod', '000000010000000000000001');
    expect((await putWalObject([location], key, encodeWalObject(segment, current.epoch, current.dataKey))).written).toEqual(['one']);
    const reader = { keyRing: ringA, deployment: 'prod', keyLocations: [location], keyCache: new Map<string, Buffer>() };
    expect((await readWalObject(location, key, reader)).equals(segment)).toBe(true);

    // Rotation: the epoch object is rewrapped under a new master key; the segment is untouched and still opens.
    const keyB = randomBytes(32);
    const ringAB = new KeyRing({ activeKeyId: 'b', keys: new Map([['a', ringA.get('a')!], ['b', keyB]]) });
    const segmentBefore = (await readAll(await location.get(key))).toString('hex');
    expect(await rewrapPointInTimeKeys([location], 'prod', ringAB)).toMatchObject({ epochsRewrapped: 1 });
    expect(await rewrapPointInTimeKeys([location], 'prod', ringAB)).toMatchObject({ epochsRewrapped: 0 });
    expect((await readWalKeyEpoch(location, 'prod', current.epoch))!.dataKey.keyId).toBe('b');
    expect((await readAll(await location.get(key))).toString('hex')).toBe(segmentBefore);
    const ringB = new KeyRing({ activeKeyId: 'b', keys: new Map([['b', keyB]]) });
    const readerB = { ...reader, keyRing: ringB, keyCache: new Map<string, Buffer>() };
    expect((await readWalObject(location, key, readerB)).equals(segment)).toBe(true);
    await expect(readWalObject(location, key, { ...reader, keyCache: new Map() })).rejects.toThrow(/"b"/);
  });

  it('refuses a WAL mark edited after it was written', async () => {
    const location = new FilesystemLocation({ name: 'two', region: 'eu', kind: 'filesystem', path: root, prefix: 'b' });
    await writeWalMark(location, { format: 1, deployment: 'prod', slot: 's', timeline: 1, lsn: '0/3000000', time: '2026-01-01T00:00:00.000Z', walSegmentBytes: 16 << 20 }, ringA);
    expect((await readWalMark(location, 'prod', ringA))?.lsn).toBe('0/3000000');
    const text = (await import('node:fs')).readFileSync(join(root, 'b', 'prod', 'wal', 'mark.json'), 'utf8');
    await location.put(walMarkKey('prod'), Buffer.from(text.replace('0/3000000', '0/9000000')));
    await expect(readWalMark(location, 'prod', ringA)).rejects.toThrow(/fails its MAC/);
  });
});

describe('a checkpoint placed on the database clock', () => {
  const artifact = { key: 'k', size: 1, sha256: '0'.repeat(64), plaintextBytes: 1, plaintextSha256: '0'.repeat(64) };
  function checkpoint(id: string, coveredAt: string, databaseAt: string | undefined): CheckpointManifest {
    return {
      format: 1,
      kind: 'recordings-checkpoint',
      deployment: 'prod',
      checkpointId: id,
      startedAt: coveredAt,
      committedAt: coveredAt,
      coveredAt,
      ...(databaseAt ? { databaseAt } : {}),
      encryption: { cipher: 'AES-256-GCM', framing: 'VPB1', dataKey: ringA.wrap(randomBytes(32)) },
      artifacts: { recordingsIndex: artifact, addedBlobs: artifact },
      recordings: { objects: 0, bytes: 0, copiedObjects: 0, copiedBytes: 0, reusedObjects: 0, newerThanPoint: 0 },
      locations: [{ name: 'three', region: 'eu' }],
    };
  }

  it('is selected for a moment by the database clock, however far ahead the bucket clock runs', async () => {
    const location = new FilesystemLocation({ name: 'three', region: 'eu', kind: 'filesystem', path: root, prefix: 'c' });
    // The bucket's clock runs 5 minutes ahead of the database's: by coveredAt alone, no checkpoint is at or before 12:00:30.
    const first = pointInTimeId(new Date('2026-12-01T12:00:00.000Z'), 'aaaaaa');
    const second = pointInTimeId(new Date('2026-12-01T12:01:00.000Z'), 'bbbbbb');
    await writePointManifest([location], CHECKPOINT_KIND, checkpoint(first, '2026-12-01T12:05:00.000Z', '2026-12-01T12:00:00.100000Z'), ringA);
    await writePointManifest([location], CHECKPOINT_KIND, checkpoint(second, '2026-12-01T12:06:00.000Z', '2026-12-01T12:01:00.100000Z'), ringA);
    expect((await pointAt([location], CHECKPOINT_KIND, 'prod', new Date('2026-12-01T12:00:30Z'), ringA)).id).toBe(first);
    expect((await pointAt([location], CHECKPOINT_KIND, 'prod', new Date('2026-12-01T12:01:30Z'), ringA)).id).toBe(second);
    await expect(pointAt([location], CHECKPOINT_KIND, 'prod', new Date('2026-12-01T11:59:59Z'), ringA)).rejects.toThrow(/2026-12-01T12:00:00\.100000Z/);
  });

  it('falls back to the bucket clock for a checkpoint written without the database clock', async () => {
    const location = new FilesystemLocation({ name: 'three', region: 'eu', kind: 'filesystem', path: root, prefix: 'd' });
    const id = pointInTimeId(new Date('2026-12-01T12:00:00.000Z'), 'cccccc');
    await writePointManifest([location], CHECKPOINT_KIND, checkpoint(id, '2026-12-01T12:05:00.000Z', undefined), ringA);
    await expect(pointAt([location], CHECKPOINT_KIND, 'prod', new Date('2026-12-01T12:00:30Z'), ringA)).rejects.toThrow(/2026-12-01T12:05:00\.000Z/);
    expect((await pointAt([location], CHECKPOINT_KIND, 'prod', new Date('2026-12-01T12:05:00Z'), ringA)).id).toBe(id);
  });
});
