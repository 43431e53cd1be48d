// The VPB1 framing: header layout, per-chunk nonce and AAD, and the sealing/opening of one chunk.
// docs/encryption-format.md is the normative description; keep the two in step.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ArtifactCorruptError, WrongDataKeyError } from './crypto-errors';

export const MAGIC = Buffer.from('VPB1', 'ascii');
export const FORMAT_VERSION = 1;
/** magic(4) + version(1) + chunk size(4) + key check(8) + nonce prefix(8). */
export const HEADER_LENGTH = 25;
export const TAG_LENGTH = 16;
export const KEY_CHECK_LENGTH = 8;
export const NONCE_PREFIX_LENGTH = 8;
export const DATA_KEY_LENGTH = 32;
/** Plaintext bytes per chunk: big enough that per-chunk overhead vanishes, small enough to stream. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
export const MIN_CHUNK_SIZE = 1024;
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
/** The chunk index is a uint32 in the nonce; past it a nonce would repeat. */
const MAX_CHUNKS = 2 ** 32;
const KEY_CHECK_LABEL = 'VPB1 key check';

export interface FrameHeader {
  readonly chunkSize: number;
  readonly keyCheck: Buffer;
  readonly noncePrefix: Buffer;
  /** The 25 header bytes exactly as written; they are part of every chunk's AAD. */
  readonly bytes: Buffer;
}

export function assertDataKey(dataKey: Buffer): void {
  if (!Buffer.isBuffer(dataKey) || dataKey.length !== DATA_KEY_LENGTH) {
    throw new TypeError(`a data key must be a Buffer of ${DATA_KEY_LENGTH} bytes (use generateDataKey())`);
  }
}

export function assertChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`chunkSize must be an integer between ${MIN_CHUNK_SIZE} and ${MAX_CHUNK_SIZE} bytes, got ${chunkSize}`);
  }
}

/** Lets a reader tell "wrong key" from "corrupt" before opening any chunk, without revealing the key. */
export function computeKeyCheck(dataKey: Buffer): Buffer {
  return createHmac('sha256', dataKey).update(KEY_CHECK_LABEL, 'ascii').digest().subarray(0, KEY_CHECK_LENGTH);
}

export function createHeader(dataKey: Buffer, chunkSize: number): FrameHeader {
  assertDataKey(dataKey);
  assertChunkSize(chunkSize);
  const bytes = Buffer.alloc(HEADER_LENGTH);
  MAGIC.copy(bytes, 0);
  bytes.writeUInt8(FORMAT_VERSION, 4);
  bytes.writeUInt32BE(chunkSize, 5);
  const keyCheck = computeKeyCheck(dataKey);
  keyCheck.copy(bytes, 9);
  randomBytes(NONCE_PREFIX_LENGTH).copy(bytes, 17);
  return { chunkSize, keyCheck: bytes.subarray(9, 17), noncePrefix: bytes.subarray(17, 25), bytes };
}

/** Validates a header read from an artifact against the data key that is meant to open it. */
export function parseHeader(source: Buffer, dataKey: Buffer): FrameHeader {
  if (source.length < HEADER_LENGTH) {
    throw new ArtifactCorruptError(`it ends after ${source.length} bytes, inside the ${HEADER_LENGTH}-byte header`);
  }
  const bytes = Buffer.from(source.subarray(0, HEADER_LENGTH));
  if (!bytes.subarray(0, 4).equals(MAGIC)) {
    throw new ArtifactCorruptError('it does not start with the VPB1 magic bytes (not a vaultpam-backup artifact, or not encrypted)');
  }
  const version = bytes.readUInt8(4);
  if (version !== FORMAT_VERSION) {
    throw new ArtifactCorruptError(`format version ${version} is not supported (this build reads version ${FORMAT_VERSION})`);
  }
  const chunkSize = bytes.readUInt32BE(5);
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new ArtifactCorruptError(`the header's chunk size ${chunkSize} is outside ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE}`);
  }
  const keyCheck = bytes.subarray(9, 17);
  if (!timingSafeEqual(keyCheck, computeKeyCheck(dataKey))) throw new WrongDataKeyError();
  return { chunkSize, keyCheck, noncePrefix: bytes.subarray(17, 25), bytes };
}

/** Exact artifact size for a plaintext size, so uploads can announce their length up front. */
export function encryptedSize(plaintextSize: number, chunkSize: number = DEFAULT_CHUNK_SIZE): number {
  assertChunkSize(chunkSize);
  const chunks = Math.max(1, Math.ceil(plaintextSize / chunkSize));
  return HEADER_LENGTH + plaintextSize + chunks * TAG_LENGTH;
}

/**
 * Nonce = nonce prefix || uint32 BE index; AAD = header || uint32 BE index || final flag.
 * One instance per stream; the nonce and AAD buffers are rewritten in place for each chunk
 * (createCipheriv and setAAD copy them), so a chunk costs no allocation beyond the cipher's own.
 */
class ChunkFraming {
  protected readonly nonce = Buffer.alloc(NONCE_PREFIX_LENGTH + 4);
  protected readonly aad = Buffer.alloc(HEADER_LENGTH + 5);
  protected index = 0;
  protected finished = false;

  constructor(
    protected readonly dataKey: Buffer,
    readonly header: FrameHeader,
  ) {
    header.noncePrefix.copy(this.nonce, 0);
    header.bytes.copy(this.aad, 0);
  }

  /** Number of chunks sealed or opened so far. */
  get chunkCount(): number {
    return this.index;
  }

  protected prepare(final: boolean): void {
    if (this.finished) throw new Error('the final chunk was already processed; a VPB1 stream has exactly one');
    if (this.index >= MAX_CHUNKS) throw new RangeError('a VPB1 stream holds at most 2^32 chunks; use a larger chunk size');
    this.nonce.writeUInt32BE(this.index, NONCE_PREFIX_LENGTH);
    this.aad.writeUInt32BE(this.index, HEADER_LENGTH);
    this.aad.writeUInt8(final ? 1 : 0, HEADER_LENGTH + 4);
  }
}

export class ChunkSealer extends ChunkFraming {
  /** Returns the ciphertext (same length as the plaintext) and the 16-byte tag that follows it. */
  seal(plaintext: Buffer, final: boolean): [ciphertext: Buffer, tag: Buffer] {
    this.prepare(final);
    const cipher = createCipheriv('aes-256-gcm', this.dataKey, this.nonce, { authTagLength: TAG_LENGTH });
    cipher.setAAD(this.aad);
    const ciphertext = cipher.update(plaintext);
    cipher.final();
    this.index += 1;
    this.finished = final;
    return [ciphertext, cipher.getAuthTag()];
  }
}

export class ChunkOpener extends ChunkFraming {
  /** `record` is ciphertext || tag. Plaintext is returned only after the tag verified. */
  open(record: Buffer, final: boolean): Buffer {
    if (record.length < TAG_LENGTH) {
      throw new ArtifactCorruptError(`chunk ${this.index} is ${record.length} bytes, shorter than its ${TAG_LENGTH}-byte tag`);
    }
    this.prepare(final);
    const split = record.length - TAG_LENGTH;
    const decipher = createDecipheriv('aes-256-gcm', this.dataKey, this.nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(this.aad);
    decipher.setAuthTag(record.subarray(split));
    const plaintext = decipher.update(record.subarray(0, split));
    try {
      decipher.final();
    } catch {
      throw new ArtifactCorruptError(
        final
          ? `chunk ${this.index} failed authentication as the final chunk (altered, or the artifact was cut short)`
          : `chunk ${this.index} failed authentication (altered, reordered or a chunk is missing)`,
      );
    }
    this.index += 1;
    this.finished = final;
    return plaintext;
  }
}
