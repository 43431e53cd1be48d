// Tests of the filesystem backup location: the BackupLocation contract, atomic writes, key confinement.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  InvalidKeyError,
  LocationUnavailableError,
  NotFoundError,
  SizeMismatchError,
  createLocation,
  isNotFound,
  type BackupLocation,
} from '../../src/storage';

async function collect(iterable: AsyncIterable<{ key: string; size: number }>): Promise<Array<{ key: string; size: number }>> {
  const out: Array<{ key: string; size: number }> = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Every file under a directory, relative paths, temp files included. */
async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(directory.length + 1)).sort();
}

describe('filesystem location', () => {
  let base: string;
  let location: BackupLocation;
  let root: string;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'vpb-fs-'));
    location = createLocation({ kind: 'filesystem', name: 'local', region: 'eu', path: join(base, 'store'), prefix: 'vaultpam' });
    root = join(base, 'store', 'vaultpam');
    await location.ensureReady();
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('describes itself by path and region', () => {
    expect(location.kind).toBe('filesystem');
    expect(location.describe()).toBe(`file://${root} (region eu)`);
  });

  it('puts, gets and stats buffers and streams', async () => {
    await location.put('prod/backups/b1/connectors.json.enc', Buffer.from('{"connectors":[]}'));
    const payload = randomBytes(3 * 1024 * 1024 + 7);
    await location.put('prod/backups/b1/db.dump.enc', Readable.from([payload.subarray(0, 1000), payload.subarray(1000)]), payload.length);

    expect(await text(await location.get('prod/backups/b1/connectors.json.enc'))).toBe('{"connectors":[]}');
    expect((await readAll(await location.get('prod/backups/b1/db.dump.enc'))).equals(payload)).toBe(true);
    expect(await location.stat('prod/backups/b1/db.dump.enc')).toEqual({ size: payload.length });
    expect(await location.exists('prod/backups/b1/db.dump.enc')).toBe(true);
    expect(await location.stat('prod/backups/b1/absent')).toBeUndefined();
    expect(await location.exists('prod/backups/b1')).toBe(false); // a directory is not an object

    await location.put('prod/backups/b1/connectors.json.enc', Buffer.from('v2'));
    expect(await text(await location.get('prod/backups/b1/connectors.json.enc'))).toBe('v2');
  });

  it('reads an object\'s first bytes and its size; nothing for a missing key or a directory', async () => {
    const payload = randomBytes(100_000);
    await location.put('prod/blobs/ab/blob', payload, payload.length);
    await location.put('prod/blobs/ab/short', Buffer.from('abc'));
    await location.put('prod/blobs/ab/empty', Buffer.alloc(0));
    const found = await location.readHead!('prod/blobs/ab/blob', 25);
    expect(found?.size).toBe(100_000);
    expect(found?.head.equals(payload.subarray(0, 25))).toBe(true);
    expect(await location.readHead!('prod/blobs/ab/short', 25)).toEqual({ head: Buffer.from('abc'), size: 3 });
    expect(await location.readHead!('prod/blobs/ab/empty', 25)).toEqual({ head: Buffer.alloc(0), size: 0 });
    for (const key of ['prod/blobs/ab/missing', 'prod/blobs/ab', 'prod/blobs/ab/blob/z']) expect(await location.readHead!(key, 25)).toBeUndefined();
  });

  it('throws a typed NotFound for a missing key or a directory', async () => {
    await location.put('prod/blobs/x/y', Buffer.from('1'));
    for (const key of ['prod/missing', 'prod/blobs/x', 'prod/blobs/x/y/z']) {
      const error = await location.get(key).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(NotFoundError);
      expect(isNotFound(error)).toBe(true);
      expect((error as Error).message).toContain('"local"');
    }
    expect(isNotFound(new Error('other'))).toBe(false);
  });

  it('lists recursively, in S3 key order, filtered by a prefix that may end mid-segment', async () => {
    const keys = ['prod/backups/b1/manifest.json', 'prod/backups/b1/db.dump.enc', 'prod/backups/b10/manifest.json', 'prod/backups/b2/manifest.json', 'prod/blobs/aa', 'prod-eu/blobs/bb', 'staging/x'];
    for (const [i, key] of keys.entries()) await location.put(key, Buffer.alloc(i + 1));

    const all = await collect(location.list(''));
    expect(all.map((o) => o.key)).toEqual([...keys].sort());
    expect(all.find((o) => o.key === 'prod/blobs/aa')?.size).toBe(5);

    expect((await collect(location.list('prod/backups/'))).map((o) => o.key)).toEqual([
      'prod/backups/b1/db.dump.enc',
      'prod/backups/b1/manifest.json',
      'prod/backups/b10/manifest.json',
      'prod/backups/b2/manifest.json',
    ]);
    expect((await collect(location.list('prod/backups/b1'))).map((o) => o.key)).toEqual([
      'prod/backups/b1/db.dump.enc',
      'prod/backups/b1/manifest.json',
      'prod/backups/b10/manifest.json',
    ]);
    expect((await collect(location.list('prod'))).length).toBe(6);
    expect(await collect(location.list('nothing/here/'))).toEqual([]);
  });

  it('deletes in bulk, ignores missing keys and prunes emptied directories', async () => {
    await location.put('prod/backups/b1/a', Buffer.from('a'));
    await location.put('prod/backups/b1/b', Buffer.from('b'));
    await location.put('prod/blobs/keep', Buffer.from('k'));
    await location.delete(['prod/backups/b1/a', 'prod/backups/b1/b', 'prod/backups/b9/never-existed']);
    expect(await collect(location.list(''))).toEqual([{ key: 'prod/blobs/keep', size: 1 }]);
    expect(await readdir(join(root, 'prod'))).toEqual(['blobs']);
    await location.delete(['prod/blobs/keep']);
    expect(await readdir(root)).toEqual([]); // the root itself stays
    await location.delete([]);
  });

  it('never shows a half-written object under its final name', async () => {
    await location.put('prod/backups/b1/db.dump.enc', Buffer.from('previous complete version'));
    const body = new PassThrough();
    const writing = location.put('prod/backups/b1/db.dump.enc', body);
    body.write(randomBytes(256 * 1024));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Mid-write: readers see the previous object, the listing holds no temporary file.
    expect(await text(await location.get('prod/backups/b1/db.dump.enc'))).toBe('previous complete version');
    expect((await collect(location.list(''))).map((o) => o.key)).toEqual(['prod/backups/b1/db.dump.enc']);
    expect((await filesUnder(root)).length).toBe(2);

    body.destroy(new Error('pg_dump exited with code 1'));
    await expect(writing).rejects.toThrow(/pg_dump exited/);
    expect(await text(await location.get('prod/backups/b1/db.dump.enc'))).toBe('previous complete version');
    expect(await filesUnder(root)).toEqual(['prod/backups/b1/db.dump.enc']);
  });

  it('refuses a body whose length differs from the announced size, leaving nothing', async () => {
    await expect(location.put('prod/x', Readable.from([Buffer.alloc(10)]), 11)).rejects.toBeInstanceOf(SizeMismatchError);
    await expect(location.put('prod/y', Buffer.alloc(10), 9)).rejects.toBeInstanceOf(SizeMismatchError);
    expect(await filesUnder(root)).toEqual([]);
  });

  it('writes whole content under concurrent puts to one key', async () => {
    const bodies = Array.from({ length: 8 }, () => randomBytes(200_000));
    await Promise.all(bodies.map((body) => location.put('prod/blobs/same', body)));
    const stored = await readAll(await location.get('prod/blobs/same'));
    const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    expect(bodies.map(digest)).toContain(digest(stored));
    expect(await filesUnder(root)).toEqual(['prod/blobs/same']);
  });

  it.each([
    ['..', /"\.\." segment/],
    ['../escape', /"\.\." segment/],
    ['prod/../../escape', /"\.\." segment/],
    ['/etc/passwd', /absolute/],
    ['prod//x', /empty path segment/],
    ['prod/x/', /empty path segment/],
    ['', /empty/],
    ['prod\\x', /backslash/],
    ['prod/./x', /"\." segment/],
    ['prod/.vpb-tmp-abc', /reserved/],
  ])('rejects the key %j with a clear error and touches nothing', async (key, message) => {
    for (const attempt of [
      () => location.put(key, Buffer.from('x')),
      () => location.get(key),
      () => location.stat(key),
      () => location.exists(key),
      () => location.delete(['prod/fine', key]),
    ]) {
      const error = await attempt().catch((err: unknown) => err);
      expect(error).toBeInstanceOf(InvalidKeyError);
      expect((error as Error).message).toMatch(message);
    }
    expect(await readdir(base)).toEqual(['store']);
    expect(await filesUnder(base)).toEqual([]);
  });

  it('rejects list prefixes that escape the root', async () => {
    await expect(collect(location.list('../'))).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(collect(location.list('/abs'))).rejects.toBeInstanceOf(InvalidKeyError);
  });

  it('ensureReady names the location and path when the directory cannot be created', async () => {
    await writeFile(join(base, 'a-file'), 'x');
    const blocked = createLocation({ kind: 'filesystem', name: 'nas', region: 'us', path: join(base, 'a-file', 'below'), prefix: 'vaultpam' });
    const error = await blocked.ensureReady().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(LocationUnavailableError);
    expect((error as Error).message).toMatch(/location "nas".*a-file\/below\/vaultpam/);
  });

  it('an empty prefix maps keys straight under the configured path', async () => {
    const bare = createLocation({ kind: 'filesystem', name: 'bare', region: 'eu', path: join(base, 'bare'), prefix: '' });
    await bare.ensureReady();
    await bare.put('prod/blobs/aa', Buffer.from('z'));
    expect((await stat(join(base, 'bare', 'prod', 'blobs', 'aa'))).size).toBe(1);
  });
});
