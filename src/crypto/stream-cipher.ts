// One-pass AES-256-GCM encryption of streams and buffers in the VPB1 framing, with flat memory.
import { Transform, type TransformCallback } from 'node:stream';
import { ArtifactCorruptError } from './crypto-errors';
import {
  ChunkOpener,
  ChunkSealer,
  DEFAULT_CHUNK_SIZE,
  HEADER_LENGTH,
  TAG_LENGTH,
  assertChunkSize,
  assertDataKey,
  createHeader,
  encryptedSize,
  parseHeader,
} from './frame-format';

export interface EncryptOptions {
  /**
   * Plaintext bytes per chunk; readers take it from the header, so it may differ between artifacts.
   * @default 65536
   */
  chunkSize?: number;
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

class EncryptStream extends Transform {
  private readonly sealer: ChunkSealer;
  private readonly chunkSize: number;
  /** Reused between chunks: input arrives in pipe-sized pieces that rarely match the chunk size. */
  private readonly pending: Buffer;
  private pendingLength = 0;

  constructor(dataKey: Buffer, chunkSize: number) {
    super({ readableHighWaterMark: chunkSize + TAG_LENGTH });
    const header = createHeader(dataKey, chunkSize);
    this.sealer = new ChunkSealer(Buffer.from(dataKey), header);
    this.chunkSize = chunkSize;
    this.pending = Buffer.allocUnsafe(chunkSize);
    this.push(header.bytes);
  }

  private sealAndPush(plaintext: Buffer, final: boolean): void {
    const [ciphertext, tag] = this.sealer.seal(plaintext, final);
    this.push(ciphertext);
    this.push(tag);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      const size = this.chunkSize;
      let offset = 0;
      while (offset < data.length) {
        // A full chunk is sealed only once more input proves it is not the last one.
        if (this.pendingLength === size) {
          this.sealAndPush(this.pending, false);
          this.pendingLength = 0;
        }
        const remaining = data.length - offset;
        if (this.pendingLength === 0 && remaining > size) {
          this.sealAndPush(data.subarray(offset, offset + size), false);
          offset += size;
          continue;
        }
        const n = Math.min(size - this.pendingLength, remaining);
        data.copy(this.pending, this.pendingLength, offset, offset + n);
        this.pendingLength += n;
        offset += n;
      }
      callback();
    } catch (err) {
      callback(toError(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.sealAndPush(this.pending.subarray(0, this.pendingLength), true);
      callback();
    } catch (err) {
      callback(toError(err));
    }
  }
}

class DecryptStream extends Transform {
  private readonly dataKey: Buffer;
  private readonly headerBytes = Buffer.alloc(HEADER_LENGTH);
  private headerLength = 0;
  private opener: ChunkOpener | undefined;
  private record: Buffer = Buffer.alloc(0);
  private recordLength = 0;

  constructor(dataKey: Buffer) {
    super();
    assertDataKey(dataKey);
    this.dataKey = Buffer.from(dataKey);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      let offset = 0;
      let opener = this.opener;
      if (!opener) {
        offset = Math.min(HEADER_LENGTH - this.headerLength, data.length);
        data.copy(this.headerBytes, this.headerLength, 0, offset);
        this.headerLength += offset;
        if (this.headerLength < HEADER_LENGTH) {
          callback();
          return;
        }
        const header = parseHeader(this.headerBytes, this.dataKey);
        opener = this.opener = new ChunkOpener(this.dataKey, header);
        this.record = Buffer.allocUnsafe(header.chunkSize + TAG_LENGTH);
      }
      const recordSize = this.record.length;
      while (offset < data.length) {
        // Only the end of input tells which record is final, so a full record waits for one more byte.
        if (this.recordLength === recordSize) {
          this.push(opener.open(this.record, false));
          this.recordLength = 0;
        }
        const remaining = data.length - offset;
        if (this.recordLength === 0 && remaining > recordSize) {
          this.push(opener.open(data.subarray(offset, offset + recordSize), false));
          offset += recordSize;
          continue;
        }
        const n = Math.min(recordSize - this.recordLength, remaining);
        data.copy(this.record, this.recordLength, offset, offset + n);
        this.recordLength += n;
        offset += n;
      }
      callback();
    } catch (err) {
      callback(toError(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (!this.opener) {
        parseHeader(this.headerBytes.subarray(0, this.headerLength), this.dataKey);
        throw new ArtifactCorruptError('the header is incomplete');
      }
      if (this.recordLength === 0) {
        throw new ArtifactCorruptError('it ends right after the header; the final chunk is missing');
      }
      this.push(this.opener.open(this.record.subarray(0, this.recordLength), true));
      callback();
    } catch (err) {
      callback(toError(err));
    }
  }
}

/** Plaintext in, VPB1 artifact out. */
export function createEncryptStream(dataKey: Buffer, options: EncryptOptions = {}): Transform {
  return new EncryptStream(dataKey, options.chunkSize ?? DEFAULT_CHUNK_SIZE);
}

/**
 * VPB1 artifact in, plaintext out. Each chunk is authenticated before it is emitted, but only a
 * stream that ends without error is complete: a consumer must discard its output on error.
 */
export function createDecryptStream(dataKey: Buffer): Transform {
  return new DecryptStream(dataKey);
}

/** The same framing for small artifacts held in memory (connector inventory, recordings index). */
export function encryptBuffer(dataKey: Buffer, plaintext: Buffer, options: EncryptOptions = {}): Buffer {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  assertChunkSize(chunkSize);
  const header = createHeader(dataKey, chunkSize);
  const sealer = new ChunkSealer(dataKey, header);
  const out = Buffer.allocUnsafe(encryptedSize(plaintext.length, chunkSize));
  let position = header.bytes.copy(out, 0);
  let offset = 0;
  do {
    const end = Math.min(offset + chunkSize, plaintext.length);
    const [ciphertext, tag] = sealer.seal(plaintext.subarray(offset, end), end === plaintext.length);
    position += ciphertext.copy(out, position);
    position += tag.copy(out, position);
    offset = end;
  } while (offset < plaintext.length);
  return out;
}

export function decryptBuffer(dataKey: Buffer, artifact: Buffer): Buffer {
  assertDataKey(dataKey);
  const header = parseHeader(artifact, dataKey);
  const body = artifact.subarray(HEADER_LENGTH);
  if (body.length === 0) throw new ArtifactCorruptError('it ends right after the header; the final chunk is missing');
  const recordSize = header.chunkSize + TAG_LENGTH;
  const chunks = Math.ceil(body.length / recordSize);
  const lastLength = body.length - (chunks - 1) * recordSize;
  if (lastLength < TAG_LENGTH) {
    throw new ArtifactCorruptError(`it ends inside the tag of chunk ${chunks - 1}`);
  }
  const opener = new ChunkOpener(dataKey, header);
  const out = Buffer.allocUnsafe(body.length - chunks * TAG_LENGTH);
  let position = 0;
  for (let i = 0; i < chunks; i += 1) {
    const start = i * recordSize;
    const plaintext = opener.open(body.subarray(start, Math.min(start + recordSize, body.length)), i === chunks - 1);
    position += plaintext.copy(out, position);
  }
  return out;
}
