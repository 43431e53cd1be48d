// The S3 backup location against a real S3-compatible server (the local stack's versitygw): no mocks.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDecryptStream, createEncryptStream, encryptedSize, generateDataKey } from '../../src/crypto';
import { putToEach } from '../../src/storage/fan-out-put';
import { listInKeyOrder } from '../../src/storage/ordered-listing';
import { localStackDir, localStackPorts } from '../../src/config/local-stack';
import type { LocationConfig } from '../../src/config/schema';
import {
  InvalidKeyError,
  LocationUnavailableError,
  NotFoundError,
  SizeMismatchError,
  TransferBudget,
  createLocation,
  createS3Client,
  isNotFound,
  type BackupLocation,
} from '../../src/storage';

// VAULTPAM_TEST_S3_PORT / VAULTPAM_TEST_S3_SECRET point the test at another server than the stack's.
const stackDir = localStackDir();
const port = Number(process.env.VAULTPAM_TEST_S3_PORT ?? localStackPorts().s3);
const accessKey = process.env.VAULTPAM_TEST_S3_ACCESS_KEY ?? 'vaultpam';
const secretKey = process.env.VAULTPAM_TEST_S3_SECRET ?? readFileSync(join(stackDir, 'secrets', 's3-secret-key'), 'utf8').trim();

/** S3's minimum part size; a stream past it makes minio go multipart. */
const PART_SIZE = 5 * 1024 * 1024;
const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const bucket = `vpb-test-${runId}`;

function s3Config(overrides: Partial<Extract<LocationConfig, { kind: 's3' }>> = {}): Extract<LocationConfig, { kind: 's3' }> {
  return {
    kind: 's3',
    name: 'offsite',
    region: 'eu',
    prefix: 'vaultpam',
    bucket,
    endPoint: '127.0.0.1',
    port,
    useSSL: false,
    accessKey,
    secretKey: { file: join(stackDir, 'secrets', 's3-secret-key') },
    ...overrides,
  };
}

async function collect(iterable: AsyncIterable<{ key: string; size: number }>): Promise<Array<{ key: string; size: number }>> {
  const out: Array<{ key: string; size: number }> = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const part of stream) hash.update(part as Buffer);
  return hash.digest('hex');
}

/** A lazily generated random stream: never held whole in memory; its digest is known once it ends. */
function generated(size: number, failAfter?: number): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  const stream = new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) {
        this.destroy(new Error('pg_dump exited with code 1'));
        return;
      }
      if (sent >= size) {
        this.push(null);
        return;
      }
      const piece = randomBytes(Math.min(256 * 1024, size - sent));
      hash.update(piece);
      sent += piece.length;
      this.push(piece);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('s3 location (real server)', () => {
  const client = createS3Client({ endPoint: '127.0.0.1', port, useSSL: false, accessKey }, secretKey);
  let location: BackupLocation;

  beforeAll(async () => {
    location = createLocation(s3Config(), { secretKey }, { partSize: PART_SIZE });
    await location.ensureReady();
  });

  afterAll(async () => {
    if (!(await client.bucketExists(bucket).catch(() => false))) return;
    const leftovers: string[] = [];
    for await (const item of client.listObjectsV2(bucket, '', true) as AsyncIterable<{ name?: string }>) {
      if (item.name) leftovers.push(item.name);
    }
    for (let i = 0; i < leftovers.length; i += 1000) await client.removeObjects(bucket, leftovers.slice(i, i + 1000));
    for await (const upload of client.listIncompleteUploads(bucket, '', true) as AsyncIterable<{ key: string }>) {
      await client.removeIncompleteUpload(bucket, upload.key);
    }
    await client.removeBucket(bucket);
  });

  it('creates its bucket once and describes itself without secrets', async () => {
    expect(await client.bucketExists(bucket)).toBe(true);
    await location.ensureReady(); // idempotent
    expect(location.describe()).toBe(`s3://${bucket}/vaultpam at 127.0.0.1:${port} (region eu)`);
    expect(location.describe()).not.toContain(secretKey);
    expect(location.kind).toBe('s3');
    expect(location.region).toBe('eu');
  });

  it('puts, gets and stats objects under the location prefix', async () => {
    const body = Buffer.from('{"connectors":[{"id":"c1"}]}');
    const put = await location.put('prod/backups/b1/connectors.json.enc', body);
    expect(put.etag).toMatch(/^[0-9a-f]{32}$/);
    expect((await client.statObject(bucket, 'vaultpam/prod/backups/b1/connectors.json.enc')).size).toBe(body.length);
    expect(await sha256(await location.get('prod/backups/b1/connectors.json.enc'))).toBe(createHash('sha256').update(body).digest('hex'));
    expect(await location.stat('prod/backups/b1/connectors.json.enc')).toEqual({ size: body.length, etag: put.etag });
    expect(await location.exists('prod/backups/b1/connectors.json.enc')).toBe(true);

    const small = generated(300_000);
    await location.put('prod/backups/b1/small-stream', small.stream, 300_000);
    expect(await sha256(await location.get('prod/backups/b1/small-stream'))).toBe(small.digest());
  });

  it('stores empty and small streams of unknown size in one request', async () => {
    await location.put('prod/backups/b7/empty', Readable.from([]));
    await location.put('prod/backups/b7/empty-sized', Readable.from([]), 0);
    expect(await location.stat('prod/backups/b7/empty')).toMatchObject({ size: 0 });
    expect(await location.stat('prod/backups/b7/empty-sized')).toMatchObject({ size: 0 });
    const small = generated(PART_SIZE);
    const put = await location.put('prod/backups/b7/small', small.stream);
    expect(put.etag).toMatch(/^[0-9a-f]{32}$/); // not multipart
    expect(await sha256(await location.get('prod/backups/b7/small'))).toBe(small.digest());
  });

  it('reads an object\'s first bytes and its whole size in one ranged GET, without a stat', async () => {
    const body = randomBytes(300_000);
    await location.put('prod/heads/ab/head-check', body, body.length);
    await location.put('prod/heads/ab/head-empty', Buffer.alloc(0), 0);
    await location.put('prod/heads/ab/head-short', Buffer.from('abc'), 3);
    const stat = vi.spyOn(location, 'stat');
    try {
      const found = await location.readHead!('prod/heads/ab/head-check', 25);
      expect(found?.size).toBe(300_000);
      expect(found?.head.equals(body.subarray(0, 25))).toBe(true);
      expect(await location.readHead!('prod/heads/ab/head-empty', 25)).toEqual({ head: Buffer.alloc(0), size: 0 });
      const short = await location.readHead!('prod/heads/ab/head-short', 25);
      expect(short?.size).toBe(3);
      expect(short?.head.toString()).toBe('abc');
      expect(await location.readHead!('prod/heads/ab/none', 25)).toBeUndefined();
      expect(stat).not.toHaveBeenCalled();
    } finally {
      stat.mockRestore();
    }
  });

  it('get of a missing key throws a typed NotFound; stat and exists answer quietly', async () => {
    const error = await location.get('prod/backups/none/manifest.json').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(isNotFound(error)).toBe(true);
    expect((error as Error).message).toContain('"offsite"');
    expect(await location.stat('prod/backups/none/manifest.json')).toBeUndefined();
    expect(await location.exists('prod/backups/none/manifest.json')).toBe(false);
  });

  it('lists more than 1000 keys across pages and deletes them in bulk', async () => {
    const keys = Array.from({ length: 1100 }, (_, i) => `prod/blobs/${createHash('sha256').update(String(i)).digest('hex')}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((key, j) => location.put(key, Buffer.alloc(1 + ((i + j) % 7), 'x'))));
    }
    await location.put('prod/backups/b2/manifest.json', Buffer.from('{}'));

    const listed = await collect(location.list('prod/blobs/'));
    expect(listed).toHaveLength(1100);
    expect(listed.map((o) => o.key)).toEqual([...keys].sort());
    const sizes = new Map(keys.map((key, i) => [key, 1 + (i % 7)]));
    expect(listed.every((o) => sizes.get(o.key) === o.size)).toBe(true);

    // An early stop must not leave the listing running.
    let seen = 0;
    for await (const _ of location.list('prod/blobs/')) if (++seen === 3) break;
    expect(seen).toBe(3);

    await location.delete([...keys, 'prod/blobs/never-written', 'prod/blobs/also-missing']);
    expect(await collect(location.list('prod/blobs/'))).toEqual([]);
    expect(await location.exists('prod/backups/b2/manifest.json')).toBe(true);
  });

  it('lists a bucket in key order several prefixes at once, the same objects as one listing of it', async () => {
    const listingBucket = `${bucket}-listing`;
    await client.makeBucket(listingBucket);
    try {
      // A day past one page (1000 keys), days spread over months, loose objects at every level, keys sorting around '/'.
      const keys = [
        ...Array.from({ length: 1050 }, (_, i) => `sessions/2026/11/30/${createHash('sha256').update(String(i)).digest('hex')}.cast`),
        ...Array.from({ length: 60 }, (_, i) => `sessions/2026/${String(1 + (i % 12)).padStart(2, '0')}/${String(1 + (i % 5)).padStart(2, '0')}/r${i}.cast`),
        'a.b', 'a-x', 'a/1', 'a/2/x', 'a0', 'sessions/2026/01.cast', 'sessions/2026/01/notes', 'sessions/z', 'zz',
      ];
      for (let i = 0; i < keys.length; i += 64) await Promise.all(keys.slice(i, i + 64).map((key, j) => client.putObject(listingBucket, key, Buffer.alloc(1 + ((i + j) % 9), 'r'))));
      const plain: { name: string; size: number; etag: string }[] = [];
      for await (const item of client.listObjectsV2(listingBucket, '', true) as AsyncIterable<{ name: string; size: number; etag: string }>) plain.push({ name: item.name, size: item.size, etag: item.etag.replace(/"/g, '') });
      const ordered: { name: string; size: number; etag: string }[] = [];
      for await (const item of listInKeyOrder(client, listingBucket, { concurrency: 3, maxLevelEntries: 20 })) ordered.push({ name: item.name, size: item.size, etag: item.etag });
      expect(plain).toHaveLength(keys.length);
      expect(ordered).toEqual(plain);
    } finally {
      const names: string[] = [];
      for await (const item of client.listObjectsV2(listingBucket, '', true) as AsyncIterable<{ name: string }>) names.push(item.name);
      for (let i = 0; i < names.length; i += 1000) await client.removeObjects(listingBucket, names.slice(i, i + 1000));
      await client.removeBucket(listingBucket);
    }
  });

  it('uploads a stream larger than the part size by multipart, with flat memory, and reads it back', async () => {
    const size = 3 * PART_SIZE + 12345;
    const source = generated(size);
    const put = await location.put('prod/backups/b3/db.dump.raw', source.stream);
    expect(put.etag).toMatch(/-\d+$/); // a multipart ETag carries its part count
    expect((await location.stat('prod/backups/b3/db.dump.raw'))?.size).toBe(size);
    expect(await sha256(await location.get('prod/backups/b3/db.dump.raw'))).toBe(source.digest());
  });

  it('draws every part buffer from a shared budget: concurrent uploads hold no more than it, and nothing once done', async () => {
    // Four uploads of three parts and a bit, one budget of three parts: the fourth waits for a buffer, none holds two.
    const budget = new TransferBudget(3 * PART_SIZE, 120_000); // no wait runs out, however loaded the machine
    const budgeted = createLocation(s3Config({ prefix: 'budgeted' }), { secretKey }, { partSize: PART_SIZE, budget });
    const size = 3 * PART_SIZE + 777;
    const sources = [0, 1, 2, 3].map(() => generated(size));
    const puts = await Promise.all(sources.map((source, i) => budgeted.put(`prod/backups/b8/part-${i}`, source.stream, i === 0 ? size : undefined)));
    for (const put of puts) expect(put.etag).toMatch(/-\d+$/);
    expect(budget.peakBytesHeld).toBe(3 * PART_SIZE);
    expect(budget.bytesHeld).toBe(0);
    for (const [i, source] of sources.entries()) expect(await sha256(await budgeted.get(`prod/backups/b8/part-${i}`))).toBe(source.digest());
    // A small object of known size holds a buffer of its own size only.
    const small = new TransferBudget(4 * PART_SIZE);
    await createLocation(s3Config({ prefix: 'budgeted' }), { secretKey }, { partSize: PART_SIZE, budget: small }).put('prod/backups/b8/small', generated(65_561).stream, 65_561);
    expect(small.peakBytesHeld).toBe(65_561);
  });

  it('writes each recording to two S3 locations at once from a budget of two parts without waiting forever', async () => {
    // Every copy needs a buffer at both locations; with room for two, copies that each got one would block each other
    // if buffers were not granted in the order asked.
    const budget = new TransferBudget(2 * PART_SIZE, 120_000);
    const pair = ['fan-a', 'fan-b'].map((prefix) => createLocation(s3Config({ prefix }), { secretKey }, { partSize: PART_SIZE, budget }));
    const size = 2 * PART_SIZE + 321;
    const sources = [0, 1, 2].map(() => generated(size));
    const results = await withTimeout(Promise.all(sources.map((source, i) => putToEach(pair, `prod/blobs/fan-${i}`, source.stream, size))), 90_000, 'three fan-out puts');
    for (const result of results) expect(result).toEqual({ written: ['offsite', 'offsite'], failed: [] });
    expect(budget.peakBytesHeld).toBeLessThanOrEqual(2 * PART_SIZE);
    expect(budget.bytesHeld).toBe(0);
    for (const [i, source] of sources.entries()) {
      const digest = source.digest();
      for (const location of pair) expect(await sha256(await location.get(`prod/blobs/fan-${i}`))).toBe(digest);
    }
  });

  it('stores an encrypted dump stream of announced size and decrypts it on the way back', async () => {
    const dataKey = generateDataKey();
    const size = 2 * PART_SIZE + 999;
    const source = generated(size);
    const encrypt = createEncryptStream(dataKey);
    const uploading = location.put('prod/backups/b4/db.dump.enc', encrypt, encryptedSize(size));
    await Promise.all([pipeline(source.stream, encrypt).catch(() => undefined), uploading]);
    expect((await location.stat('prod/backups/b4/db.dump.enc'))?.size).toBe(encryptedSize(size));

    const hash = createHash('sha256');
    await pipeline(
      await location.get('prod/backups/b4/db.dump.enc'),
      createDecryptStream(dataKey),
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          callback();
        },
      }),
    );
    expect(hash.digest('hex')).toBe(source.digest());
  });

  it('a source that fails mid-upload rejects promptly and leaves neither an object nor parts', async () => {
    const failing = generated(4 * PART_SIZE, 2 * PART_SIZE + 100);
    const error = await withTimeout(location.put('prod/backups/b5/db.dump.enc', failing.stream), 30_000, 'put').catch((err: unknown) => err);
    expect((error as Error).message).toMatch(/pg_dump exited/);
    expect(await location.exists('prod/backups/b5/db.dump.enc')).toBe(false);
    const pending: string[] = [];
    for await (const upload of client.listIncompleteUploads(bucket, 'vaultpam/prod/backups/b5/', true) as AsyncIterable<{ key: string }>) {
      pending.push(upload.key);
    }
    expect(pending).toEqual([]);
  });

  it('refuses a body shorter or longer than announced, storing nothing', async () => {
    await expect(location.put('prod/x', generated(1000).stream, 1001)).rejects.toBeInstanceOf(SizeMismatchError);
    await expect(location.put('prod/y', generated(PART_SIZE + 10).stream, PART_SIZE + 1)).rejects.toBeInstanceOf(SizeMismatchError);
    await expect(location.put('prod/z', Buffer.alloc(5), 4)).rejects.toBeInstanceOf(SizeMismatchError);
    expect(await location.exists('prod/x')).toBe(false);
    expect(await location.exists('prod/y')).toBe(false);
  });

  it('keeps locations with different prefixes in one bucket apart', async () => {
    const other = createLocation(s3Config({ name: 'other', prefix: 'elsewhere' }), { secretKey });
    await other.put('prod/backups/b6/manifest.json', Buffer.from('{}'));
    expect(await location.exists('prod/backups/b6/manifest.json')).toBe(false);
    expect((await collect(other.list(''))).map((o) => o.key)).toEqual(['prod/backups/b6/manifest.json']);
    await other.delete(['prod/backups/b6/manifest.json']);
  });

  it('rejects keys that escape the prefix', async () => {
    await expect(location.put('../outside', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(location.get('/abs')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(location.delete(['prod/ok', 'a/../../b'])).rejects.toBeInstanceOf(InvalidKeyError);
  });

  it('ensureReady names the location and endpoint when the server is unreachable or refuses the credentials', async () => {
    const unreachable = createLocation(s3Config({ name: 'dead', port: 1 }), { secretKey });
    const down = await unreachable.ensureReady().catch((err: unknown) => err);
    expect(down).toBeInstanceOf(LocationUnavailableError);
    expect((down as Error).message).toMatch(/location "dead" \(s3:\/\/.* at 127\.0\.0\.1:1 \(region eu\)\).*ECONNREFUSED/);

    const wrongSecret = 'not-the-secret-0123456789';
    const refused = await createLocation(s3Config({ name: 'badcreds' }), { secretKey: wrongSecret }).ensureReady().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(LocationUnavailableError);
    expect((refused as Error).message).toMatch(/location "badcreds".*secretKey/);
    expect((refused as Error).message).not.toContain(wrongSecret);
  });

  it('needs a resolved secret key to build an s3 location', () => {
    expect(() => createLocation(s3Config(), {})).toThrow(/resolved secretKey/);
  });
});
