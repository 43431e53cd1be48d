// A pass-through that opens VPB1 ciphertext as it flows: a copy that carries damaged or foreign bytes fails at the end.
import { Transform, type TransformCallback } from 'node:stream';
import { createDecryptStream } from './stream-cipher';

/**
 * Passes the ciphertext on unchanged while decrypting it alongside (and dropping the plaintext), so every chunk's
 * GCM tag and the header's key check are verified. Put between a source and an upload of known size, it makes the
 * upload fail (and so leave nothing) when the source is damaged, truncated or sealed under another key.
 * `plaintextBytes` holds what the ciphertext opened to, once the stream has finished.
 */
export class CiphertextCheck extends Transform {
  plaintextBytes = 0;
  private readonly opener: Transform;
  private failure: Error | undefined;

  constructor(key: Buffer) {
    super();
    this.opener = createDecryptStream(key);
    this.opener.on('data', (plain: Buffer) => {
      this.plaintextBytes += plain.length;
    });
    this.opener.on('error', (err: Error) => {
      this.failure ??= err;
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.failure) return callback(this.failure);
    this.opener.write(chunk, () => callback(this.failure ?? null, chunk));
  }

  override _flush(callback: TransformCallback): void {
    if (this.failure) return callback(this.failure);
    this.opener.once('end', () => callback(this.failure ?? null));
    this.opener.once('error', (err: Error) => callback(err));
    this.opener.end();
  }
}
