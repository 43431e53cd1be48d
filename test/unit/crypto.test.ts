// Tests of the VPB1 framing, the envelope and the key ring, plus a second decoder written from docs/encryption-format.md.
import { createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  ArtifactCorruptError,
  DEFAULT_CHUNK_SIZE,
  HEADER_LENGTH,
  KeyRing,
  KeyRingError,
  KeyUnwrapError,
  TAG_LENGTH,
  UnknownMasterKeyError,
  WrongDataKeyError,
  createDecryptStream,
  createEncryptStream,
  decryptBuffer,
  encryptBuffer,
  encryptedSize,
  generateDataKey,
  parseMasterKey,
  unwrapKey,
  wrapKey,
} from '../../src/crypto';

const RECORD = DEFAULT_CHUNK_SIZE + TAG_LENGTH;

/** Splits input into uneven pieces, as a pipe from pg_dump would deliver it. */
function* pieces(input: Buffer, seed = 7): Generator<Buffer> {
  let offset = 0;
  let state = seed;
  while (offset < input.length) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (state % (3 * DEFAULT_CHUNK_SIZE));
    yield input.subarray(offset, offset + size);
    offset += size;
  }
}

/** Runs input through a transform; returns what came out, and the error if the stream failed. */
async function run(transform: Transform, input: Buffer): Promise<{ output: Buffer; error?: Error }> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      callback();
    },
  });
  try {
    await pipeline(Readable.from(pieces(input)), transform, sink);
    return { output: Buffer.concat(parts) };
  } catch (err) {
    return { output: Buffer.concat(parts), error: err as Error };
  }
}

async function encrypt(key: Buffer, plaintext: Buffer): Promise<Buffer> {
  const { output, error } = await run(createEncryptStream(key), plaintext);
  if (error) throw error;
  return output;
}

async function decrypt(key: Buffer, artifact: Buffer): Promise<Buffer> {
  const { output, error } = await run(createDecryptStream(key), artifact);
  if (error) throw error;
  return output;
}

/** Both decoders must refuse the artifact with the same error class. */
async function expectRefused(key: Buffer, artifact: Buffer, errorClass: new (...args: never[]) => Error): Promise<void> {
  await expect(decrypt(key, artifact)).rejects.toBeInstanceOf(errorClass);
  expect(() => decryptBuffer(key, artifact)).toThrow(errorClass);
}

describe('VPB1 stream cipher', () => {
  const key = generateDataKey();
  const sizes: Array<[string, number]> = [
    ['empty', 0],
    ['1 byte', 1],
    ['one byte short of a chunk', DEFAULT_CHUNK_SIZE - 1],
    ['exactly one chunk', DEFAULT_CHUNK_SIZE],
    ['one chunk and a byte', DEFAULT_CHUNK_SIZE + 1],
    ['exactly three chunks', 3 * DEFAULT_CHUNK_SIZE],
    ['several MB', 5 * 1024 * 1024 + 12345],
  ];

  it.each(sizes)('round-trips %s through the streams and the buffer helpers', async (_label, size) => {
    const plaintext = randomBytes(size);
    const streamed = await encrypt(key, plaintext);
    const buffered = encryptBuffer(key, plaintext);
    expect(streamed.length).toBe(encryptedSize(size));
    expect(buffered.length).toBe(encryptedSize(size));
    expect((await decrypt(key, streamed)).equals(plaintext)).toBe(true);
    expect(decryptBuffer(key, streamed).equals(plaintext)).toBe(true);
    expect((await decrypt(key, buffered)).equals(plaintext)).toBe(true);
  });

  it('uses a fresh nonce prefix per artifact, so equal plaintexts give different ciphertexts', () => {
    const plaintext = Buffer.from('same connector inventory');
    expect(encryptBuffer(key, plaintext).equals(encryptBuffer(key, plaintext))).toBe(false);
  });

  it('honours a custom chunk size recorded in the header', async () => {
    const plaintext = randomBytes(10_000);
    const artifact = encryptBuffer(key, plaintext, { chunkSize: 1024 });
    expect(artifact.readUInt32BE(5)).toBe(1024);
    expect(artifact.length).toBe(encryptedSize(10_000, 1024));
    expect((await decrypt(key, artifact)).equals(plaintext)).toBe(true);
  });

  it('rejects a data key of the wrong size', () => {
    expect(() => createEncryptStream(Buffer.alloc(16))).toThrow(/32 bytes/);
    expect(() => encryptBuffer(Buffer.alloc(31), Buffer.alloc(1))).toThrow(/32 bytes/);
  });

  describe('tampering', () => {
    const plaintext = randomBytes(4 * DEFAULT_CHUNK_SIZE + 500);
    const artifact = encryptBuffer(key, plaintext);
    const chunkStart = (i: number): number => HEADER_LENGTH + i * RECORD;

    it('a flipped byte in a chunk body, a tag or the nonce prefix is refused', async () => {
      for (const position of [chunkStart(2) + 10, chunkStart(1) + RECORD - 1, artifact.length - 1, 20]) {
        const altered = Buffer.from(artifact);
        altered[position] = (altered[position] ?? 0) ^ 0x01;
        await expectRefused(key, altered, ArtifactCorruptError);
      }
    });

    it('emits only authenticated chunks before failing', async () => {
      const altered = Buffer.from(artifact);
      altered[chunkStart(2) + 5] = (altered[chunkStart(2) + 5] ?? 0) ^ 0xff;
      const { output, error } = await run(createDecryptStream(key), altered);
      expect(error).toBeInstanceOf(ArtifactCorruptError);
      expect(error?.message).toMatch(/corrupt or truncated/);
      expect(output.equals(plaintext.subarray(0, 2 * DEFAULT_CHUNK_SIZE))).toBe(true);
    });

    it('a missing final chunk (cut at a chunk boundary) is refused', async () => {
      await expectRefused(key, artifact.subarray(0, chunkStart(4)), ArtifactCorruptError);
      await expect(decrypt(key, artifact.subarray(0, chunkStart(4)))).rejects.toThrow(/final chunk/);
    });

    it('a cut inside a chunk, inside a tag, right after or inside the header is refused', async () => {
      for (const end of [chunkStart(3) + 100, chunkStart(4) + 10, HEADER_LENGTH, 10, 0]) {
        await expectRefused(key, artifact.subarray(0, end), ArtifactCorruptError);
      }
    });

    it('swapped chunks are refused', async () => {
      const swapped = Buffer.concat([
        artifact.subarray(0, chunkStart(1)),
        artifact.subarray(chunkStart(2), chunkStart(3)),
        artifact.subarray(chunkStart(1), chunkStart(2)),
        artifact.subarray(chunkStart(3)),
      ]);
      expect(swapped.length).toBe(artifact.length);
      await expectRefused(key, swapped, ArtifactCorruptError);
    });

    it('a deleted middle chunk is refused', async () => {
      const deleted = Buffer.concat([artifact.subarray(0, chunkStart(1)), artifact.subarray(chunkStart(2))]);
      await expectRefused(key, deleted, ArtifactCorruptError);
    });

    it('bytes appended after the final chunk are refused', async () => {
      await expectRefused(key, Buffer.concat([artifact, randomBytes(RECORD)]), ArtifactCorruptError);
    });

    it('a changed chunk size in the header is refused', async () => {
      const altered = Buffer.from(artifact);
      altered.writeUInt32BE(32 * 1024, 5);
      await expectRefused(key, altered, ArtifactCorruptError);
    });

    it('data that is not a VPB1 artifact is refused with a clear message', async () => {
      await expect(decrypt(key, Buffer.from('PGDMP plain dump, never encrypted'))).rejects.toThrow(/VPB1 magic/);
    });

    it('the wrong data key is refused before any chunk is opened', async () => {
      await expectRefused(generateDataKey(), artifact, WrongDataKeyError);
      await expect(decrypt(generateDataKey(), artifact)).rejects.toThrow(/different data key/);
    });
  });
});

describe('envelope', () => {
  const masterV1 = randomBytes(32);
  const masterV2 = randomBytes(32);

  it('wraps into a small JSON-able object that names the key and unwraps after rotation', () => {
    const oldDataKey = generateDataKey();
    const oldRing = new KeyRing({ activeKeyId: 'k2024', keys: new Map([['k2024', masterV1]]) });
    const wrappedOld = oldRing.wrap(oldDataKey);
    expect(wrappedOld).toMatchObject({ keyId: 'k2024', alg: 'A256GCM' });
    expect(JSON.stringify(wrappedOld).length).toBeLessThan(200);

    // Rotation: the new key becomes active, the old one stays in the ring to read older backups.
    const rotated = new KeyRing({
      activeKeyId: 'k2025',
      keys: new Map([
        ['k2024', masterV1],
        ['k2025', masterV2],
      ]),
    });
    const newDataKey = generateDataKey();
    const wrappedNew = rotated.wrap(newDataKey);
    expect(wrappedNew.keyId).toBe('k2025');
    expect(unwrapKey(JSON.parse(JSON.stringify(wrappedOld)), rotated).equals(oldDataKey)).toBe(true);
    expect(unwrapKey(wrappedNew, rotated).equals(newDataKey)).toBe(true);

    // Rewrapping an old backup's data key under the new master key is all a rotation has to write.
    const rewrapped = wrapKey(unwrapKey(wrappedOld, rotated), masterV2, 'k2025');
    expect(unwrapKey(rewrapped, rotated).equals(oldDataKey)).toBe(true);
    expect(() => unwrapKey(wrappedNew, oldRing)).toThrow(UnknownMasterKeyError);
    expect(() => unwrapKey(wrappedNew, oldRing)).toThrow(/"k2025".*not in the key ring/);
  });

  it('a wrong master key under the right id gives an error naming the id', () => {
    const wrapped = wrapKey(generateDataKey(), masterV1, 'prod-1');
    const wrongRing = new KeyRing({ activeKeyId: 'prod-1', keys: new Map([['prod-1', masterV2]]) });
    expect(() => unwrapKey(wrapped, wrongRing)).toThrow(KeyUnwrapError);
    expect(() => unwrapKey(wrapped, wrongRing)).toThrow(/master key "prod-1"/);
  });

  it('a wrapped key edited to name another master key does not unwrap', () => {
    const ring = new KeyRing({ activeKeyId: 'a', keys: new Map([['a', masterV1], ['b', masterV1]]) });
    const wrapped = ring.wrap(generateDataKey());
    expect(() => unwrapKey({ ...wrapped, keyId: 'b' }, ring)).toThrow(KeyUnwrapError);
  });

  it('a malformed wrapped key is refused with the field named', () => {
    const ring = new KeyRing({ activeKeyId: 'a', keys: new Map([['a', masterV1]]) });
    const wrapped = ring.wrap(generateDataKey());
    expect(() => unwrapKey({ ...wrapped, iv: 'not base64!' }, ring)).toThrow(/"iv"/);
  });
});

describe('key ring', () => {
  const raw = randomBytes(32);

  it('parses 64 hex digits, base64 and base64url master keys', () => {
    expect(parseMasterKey(raw.toString('hex')).equals(raw)).toBe(true);
    expect(parseMasterKey(`${raw.toString('base64')}\n`).equals(raw)).toBe(true);
    expect(parseMasterKey(raw.toString('base64url')).equals(raw)).toBe(true);
  });

  it('rejects other lengths with a clear error that does not echo the value', () => {
    const short = randomBytes(16).toString('base64');
    expect(() => parseMasterKey(short)).toThrow(/decodes to 16 bytes/);
    expect(() => parseMasterKey('correct horse battery staple')).toThrow(/64 hex digits or as base64/);
    try {
      parseMasterKey(short);
    } catch (err) {
      expect((err as Error).message).not.toContain(short);
    }
  });

  it('builds from text keys, names the faulty key, and checks the active id', () => {
    const ring = new KeyRing({ activeKeyId: 'b', keys: new Map<string, Buffer | string>([['a', raw.toString('hex')], ['b', raw]]) });
    expect(ring.ids).toEqual(['a', 'b']);
    expect(ring.get('a')?.equals(raw)).toBe(true);
    expect(() => new KeyRing({ activeKeyId: 'a', keys: new Map([['a', 'abcd']]) })).toThrow(/master key "a"/);
    expect(() => new KeyRing({ activeKeyId: 'a', keys: new Map([['a', Buffer.alloc(16)]]) })).toThrow(KeyRingError);
    expect(() => new KeyRing({ activeKeyId: 'z', keys: new Map([['a', raw]]) })).toThrow(/activeKeyId "z"/);
  });

  it('never shows key material when logged or serialised', () => {
    const ring = new KeyRing({ activeKeyId: 'a', keys: new Map([['a', raw]]) });
    for (const shown of [JSON.stringify(ring), inspect(ring), String(inspect(ring, { showHidden: true }))]) {
      expect(shown).toContain('"a"');
      expect(shown).not.toContain(raw.toString('hex'));
      expect(shown).not.toContain(raw.toString('base64'));
    }
  });
});

describe('independent decoder written from docs/encryption-format.md', () => {
  /** Deliberately shares no code with src/crypto: only node:crypto and the documented layout. */
  function specDecode(dataKey: Buffer, artifact: Buffer): Buffer {
    const header = artifact.subarray(0, 25);
    if (header.toString('ascii', 0, 4) !== 'VPB1' || header[4] !== 1) throw new Error('bad magic or version');
    const chunkSize = header.readUInt32BE(5);
    const check = createHmac('sha256', dataKey).update('VPB1 key check').digest().subarray(0, 8);
    if (!check.equals(header.subarray(9, 17))) throw new Error('key check mismatch');
    const body = artifact.subarray(25);
    const recordSize = chunkSize + 16;
    const count = Math.ceil(body.length / recordSize);
    const out: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const record = body.subarray(i * recordSize, Math.min((i + 1) * recordSize, body.length));
      const index = Buffer.alloc(4);
      index.writeUInt32BE(i);
      const nonce = Buffer.concat([header.subarray(17, 25), index]);
      const aad = Buffer.concat([header, index, Buffer.from([i === count - 1 ? 1 : 0])]);
      const decipher = createDecipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: 16 });
      decipher.setAAD(aad);
      decipher.setAuthTag(record.subarray(record.length - 16));
      out.push(decipher.update(record.subarray(0, record.length - 16)), decipher.final());
    }
    return Buffer.concat(out);
  }

  function specUnwrap(wrapped: { keyId: string; iv: string; tag: string; ciphertext: string }, masterKey: Buffer): Buffer {
    const decipher = createDecipheriv('aes-256-gcm', masterKey, Buffer.from(wrapped.iv, 'base64'), { authTagLength: 16 });
    decipher.setAAD(Buffer.from(`vaultpam-backup wrapped data key A256GCM ${wrapped.keyId}`, 'utf8'));
    decipher.setAuthTag(Buffer.from(wrapped.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(wrapped.ciphertext, 'base64')), decipher.final()]);
  }

  it('decrypts what the stream writer produced, through the documented key unwrapping', async () => {
    const masterKey = randomBytes(32);
    const dataKey = generateDataKey();
    const wrapped = JSON.parse(JSON.stringify(wrapKey(dataKey, masterKey, 'k1'))) as Parameters<typeof specUnwrap>[0];
    const unwrapped = specUnwrap(wrapped, masterKey);
    expect(unwrapped.equals(dataKey)).toBe(true);
    for (const size of [0, 1, DEFAULT_CHUNK_SIZE, 3 * DEFAULT_CHUNK_SIZE + 17]) {
      const plaintext = randomBytes(size);
      const artifact = await encrypt(dataKey, plaintext);
      expect(specDecode(unwrapped, artifact).equals(plaintext)).toBe(true);
    }
  });

  it('agrees with the writer that a cut at a chunk boundary fails', () => {
    const dataKey = generateDataKey();
    const artifact = encryptBuffer(dataKey, randomBytes(2 * DEFAULT_CHUNK_SIZE + 1));
    expect(() => specDecode(dataKey, artifact.subarray(0, HEADER_LENGTH + 2 * RECORD))).toThrow();
  });
});
