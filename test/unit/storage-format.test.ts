// Tests of storage format 2: blob names that bind their key, the ciphertext check used by copies, manifest MACs, and
// the sorted merge and ordered window that keep memory flat.
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest';
import { ManifestAuthenticationError, canonicalJson, checkManifestMac, sealManifest } from '../../src/catalog/manifest-mac';
import { blobNameFor, deriveBlobKey, ownBlobOf, readBlobSample, recordingIdentity } from '../../src/catalog/recording-blobs';
import { CiphertextCheck } from '../../src/crypto/ciphertext-check';
import { KeyRing, encryptBuffer, generateDataKey } from '../../src/crypto';
import { FilesystemLocation, blobKey } from '../../src/storage';
import { OrderedWindow } from '../../src/streams/ordered-window';
import { SortedCursor, compareKeys } from '../../src/streams/sorted-cursor';

const recording = { key: 'org-1/session-42.cast', size: 1234, etag: 'd41d8cd98f00b204e9800998ecf8427e' };

describe('blob names', () => {
  it('bind the recording and the key: another backup sealing the same recording writes another blob', () => {
    const a = ownBlobOf(generateDataKey(), recording);
    const b = ownBlobOf(generateDataKey(), recording);
    expect(a.blob).not.toBe(b.blob);
    expect(a.blobKey.equals(b.blobKey)).toBe(false);
    // A retry of the same backup derives the same key, so it finds its own blob again.
    const dataKey = generateDataKey();
    expect(ownBlobOf(dataKey, recording)).toEqual(ownBlobOf(dataKey, recording));
  });

  it('change with any part of the identity', () => {
    const key = deriveBlobKey(generateDataKey(), recordingIdentity(recording));
    const names = new Set([recording, { ...recording, etag: 'x' }, { ...recording, size: 1235 }, { ...recording, key: 'other' }].map((r) => blobNameFor(recordingIdentity(r), key)));
    expect(names.size).toBe(4);
  });

  it('live in one of 256 shard folders', () => {
    const { blob } = ownBlobOf(generateDataKey(), recording);
    expect(blob).toMatch(/^([0-9a-f]{2})\/\1[0-9a-f]{62}$/);
    expect(blobKey('prod', blob)).toBe(`prod/blobs/${blob}`);
  });
});

describe('sampled blob read', () => {
  it('opens a large blob up to its budget, checks its stored size, and names a flipped byte in what it reads', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'blob-sample-'));
    try {
      const location = new FilesystemLocation({ name: 'local', region: 'here', kind: 'filesystem', path: dir } as never);
      const dataKey = generateDataKey();
      const large = { key: 'large.cast', size: 300 * 1024, etag: 'e1' };
      const small = { key: 'small.cast', size: 1000, etag: 'e2' };
      const entries = [];
      for (const r of [large, small]) {
        const own = ownBlobOf(dataKey, r);
        await location.put(blobKey('prod', own.blob), encryptBuffer(own.blobKey, randomBytes(r.size)));
        entries.push({ ...r, blob: own.blob, blobKey: own.blobKey.toString('base64') });
      }
      const [largeEntry, smallEntry] = entries as [typeof entries[0], typeof entries[0]];
      // Two chunks of the large one (64 KiB each), the small one whole.
      expect(await readBlobSample(location, 'prod', largeEntry, 128 * 1024)).toBe(128 * 1024);
      expect(await readBlobSample(location, 'prod', smallEntry, 128 * 1024)).toBe(1000);
      // Another key, a stored size the index does not imply, a flipped byte inside the budget: each fails.
      await expect(readBlobSample(location, 'prod', { ...largeEntry, blobKey: generateDataKey().toString('base64') }, 128 * 1024)).rejects.toThrow();
      await expect(readBlobSample(location, 'prod', { ...largeEntry, size: largeEntry.size + 1 }, 128 * 1024)).rejects.toThrow(/bytes, expected/);
      const key = blobKey('prod', largeEntry.blob);
      const bytes = Buffer.from(await (await import('../../src/catalog/artifacts')).readAll(await location.get(key)));
      bytes[30_000] = bytes[30_000]! ^ 1;
      await location.put(key, bytes);
      await expect(readBlobSample(location, 'prod', largeEntry, 128 * 1024)).rejects.toThrow(/chunk 0 failed authentication/);
      await expect(readBlobSample(location, 'prod', { ...largeEntry, blob: ownBlobOf(dataKey, { ...large, etag: 'gone' }).blob }, 128 * 1024)).rejects.toThrow(/missing/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function runCheck(bytes: Buffer, key: Buffer): Promise<{ passed: Buffer; check: CiphertextCheck }> {
  const check = new CiphertextCheck(key);
  const parts: Buffer[] = [];
  const pieces = [];
  for (let i = 0; i < bytes.length; i += 7000) pieces.push(bytes.subarray(i, i + 7000));
  await pipeline(
    Readable.from(pieces),
    check,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        parts.push(chunk);
        cb();
      },
    }),
  );
  return { passed: Buffer.concat(parts), check };
}

describe('ciphertext check', () => {
  const key = generateDataKey();
  const plain = randomBytes(200_000);
  const sealed = encryptBuffer(key, plain);

  it('passes the ciphertext through unchanged and counts what it opens to', async () => {
    const { passed, check } = await runCheck(sealed, key);
    expect(passed.equals(sealed)).toBe(true);
    expect(check.plaintextBytes).toBe(plain.length);
  });

  it('fails on one flipped byte, a cut, or another key', async () => {
    const flipped = Buffer.from(sealed);
    flipped[100_000] = flipped[100_000]! ^ 1;
    await expect(runCheck(flipped, key)).rejects.toThrow();
    await expect(runCheck(sealed.subarray(0, sealed.length - 10), key)).rejects.toThrow();
    await expect(runCheck(sealed, generateDataKey())).rejects.toThrow();
  });
});

describe('manifest MAC', () => {
  const ring = new KeyRing({ activeKeyId: 'k1', keys: new Map([['k1', randomBytes(32)], ['k2', randomBytes(32)]]) });
  const manifest = { format: 2, backupId: 'b1', deployment: 'prod', artifacts: { db: { sha256: 'a'.repeat(64), size: 10 } }, tags: [] } as unknown as Manifest;

  it('verifies a sealed manifest, whatever the order of its keys', () => {
    const sealed = sealManifest(manifest, ring);
    expect(checkManifestMac(sealed, ring, 'here')).toBe('authenticated');
    const reordered = JSON.parse(canonicalJson(sealed)) as Manifest;
    expect(checkManifestMac(reordered, ring, 'here')).toBe('authenticated');
  });

  it('refuses an edited manifest, one moved to another backup id, and a format 2 manifest without MAC', () => {
    const sealed = sealManifest(manifest, ring);
    const edited = JSON.parse(JSON.stringify(sealed)) as Manifest;
    (edited.artifacts.db as { sha256: string }).sha256 = 'b'.repeat(64);
    expect(() => checkManifestMac(edited, ring, 'here')).toThrow(ManifestAuthenticationError);
    expect(() => checkManifestMac({ ...sealed, backupId: 'b2' }, ring, 'here')).toThrow(/fails its MAC/);
    const { authentication: _, ...bare } = sealed;
    expect(() => checkManifestMac(bare as Manifest, ring, 'here')).toThrow(/no MAC/);
    expect(checkManifestMac({ ...(bare as Manifest), format: 1 }, ring, 'here')).toBe('unauthenticated');
  });

  it('names a MAC key that is not in the ring, and a new seal uses the active key', () => {
    const other = new KeyRing({ activeKeyId: 'k3', keys: new Map([['k3', randomBytes(32)]]) });
    expect(() => checkManifestMac(sealManifest(manifest, ring), other, 'here')).toThrow(/"k1", which is not in the key ring/);
    expect(sealManifest(sealManifest(manifest, ring), other).authentication?.keyId).toBe('k3');
  });
});

async function* items(keys: string[]) {
  for (const key of keys) yield { key };
}

describe('sorted cursor', () => {
  it('finds keys asked in ascending order, reading the source once', async () => {
    const cursor = new SortedCursor(items(['a', 'b', 'd', 'f']), (i) => i.key);
    expect(await cursor.seek('a')).toEqual({ key: 'a' });
    expect(await cursor.seek('c')).toBeUndefined();
    expect(await cursor.seek('d')).toEqual({ key: 'd' });
    expect(await cursor.seek('g')).toBeUndefined();
  });

  it('answers "none" once the source or the questions turn out unsorted', async () => {
    const unsorted = new SortedCursor(items(['a', 'c', 'b', 'd']), (i) => i.key);
    expect(await unsorted.seek('a')).toEqual({ key: 'a' });
    expect(await unsorted.seek('d')).toBeUndefined();
    expect(unsorted.unsorted).toBe(true);
    const backwards = new SortedCursor(items(['a', 'b']), (i) => i.key);
    expect(await backwards.seek('b')).toEqual({ key: 'b' });
    expect(await backwards.seek('a')).toBeUndefined();
  });

  it('orders keys as S3 lists them (UTF-8 bytes)', () => {
    expect(compareKeys('\uFF5E', '\u{1F600}')).toBeLessThan(0);
    expect('\uFF5E' < '\u{1F600}').toBe(false);
    const keys = ['a', 'ab', 'a/b', '\u00e9', '\uFF5E', '\u{1F600}', '\uE000x', 'z', '', '\uD7FF', 'sessions/2026/x.cast'];
    const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8')));
    expect([...keys].sort(compareKeys)).toEqual(byBytes);
  });
});

describe('ordered window', () => {
  it('hands results back in push order with at most `capacity` waiting', async () => {
    const window = new OrderedWindow<number>(3);
    const out: number[] = [];
    const delays = [30, 1, 1, 1, 20, 1, 1];
    for (const [i, d] of delays.entries()) {
      out.push(...(await window.push(new Promise((r) => setTimeout(() => r(i), d)))));
    }
    out.push(...(await window.drain()));
    expect(out).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('rethrows a failure in its turn, and none goes unhandled meanwhile', async () => {
    const window = new OrderedWindow<number>(2);
    await window.push(new Promise((r) => setTimeout(() => r(0), 20)));
    await window.push(Promise.reject(new Error('second failed')));
    await expect(window.push(Promise.resolve(2))).rejects.toThrow('second failed');
  });
});

describe('external sort', () => {
  it('sorts and de-duplicates more strings than one run holds, and leaves no file behind', async () => {
    const { mkdtemp, readdir } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { sortUniqueToFile, sortedUnique } = await import('../../src/streams/external-sort');
    const workDir = await mkdtemp(join(tmpdir(), 'sort-test-'));
    const values = Array.from({ length: 2_500 }, (_, i) => ((i * 7919) % 1000).toString(16).padStart(4, '0'));
    async function* source() {
      yield* values;
    }
    const expected = [...new Set(values)].sort();
    const out: string[] = [];
    for await (const v of sortedUnique(source(), { workDir, runSize: 300 })) out.push(v);
    expect(out).toEqual(expected);
    const file = await sortUniqueToFile(source(), { workDir, runSize: 300 });
    expect(file.count).toBe(1000);
    const again: string[] = [];
    for await (const v of file.lines()) again.push(v);
    expect(again).toEqual(expected);
    await file.dispose();
    expect(await readdir(workDir)).toEqual([]);
  });

  it('in strict mode, refuses to merge against an unsorted side', async () => {
    const strict = new SortedCursor(items(['a', 'c', 'b']), (i) => i.key, true);
    await expect(strict.seek('z')).rejects.toThrow(/not in key order/);
    const asked = new SortedCursor(items(['a', 'b']), (i) => i.key, true);
    await asked.seek('b');
    await expect(asked.seek('a')).rejects.toThrow(/not in key order/);
  });
});
