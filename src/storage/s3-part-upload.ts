// An upload to S3 whose memory is its part buffers from the worker's transfer budget: at most two parts per upload, whatever the object's size.
import type { Client } from 'minio';
import type { TransferBudget } from './transfer-budget';

export interface PartUploadTarget {
  client: Client;
  bucket: string;
  objectName: string;
  /** Request headers of the object (user metadata as x-amz-meta-…). */
  headers?: Record<string, string>;
}

export interface PartUploadOptions {
  /** The announced size in bytes; a body of another length fails with `mismatch`. Undefined when unknown. */
  size?: number | undefined;
  /** Multipart part size in bytes (at least 5 MiB, S3's smallest part). */
  partSize: number;
  budget: TransferBudget;
  /** The error a body of a length other than `size` fails with. */
  mismatch: (actual: number) => Error;
}

const stripQuotes = (etag: string | undefined) => (etag ?? '').replace(/^"/, '').replace(/"$/, '');

/** User metadata as S3 request headers: keys without an x-amz- prefix or a Content-Type become x-amz-meta-<key>. */
export function metadataHeaders(metadata: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(
    Object.entries(metadata).map(([key, value]) => [/^(x-amz-|content-type$)/i.test(key) ? key : `x-amz-meta-${key}`, value]),
  );
}

/** One PUT of a buffer already in memory (no copy of it is made). */
export async function putBuffer(target: PartUploadTarget, body: Buffer): Promise<{ etag: string }> {
  const response = await target.client.makeRequestAsyncOmit(
    { method: 'PUT', bucketName: target.bucket, objectName: target.objectName, headers: { ...target.headers } },
    body,
  );
  return { etag: stripQuotes(response.headers.etag) };
}

/**
 * Uploads `body` under the target's name: one PUT when it fits one part, else a multipart upload whose parts go up
 * one after another while the next one fills (when the budget grants that second buffer). minio's own streaming
 * upload would hold up to three parts per upload, list the bucket's incomplete uploads first, and hash every part with
 * MD5 besides the SHA-256 the signature needs. On any failure the multipart upload is aborted, so no parts are left on
 * the server, and the body is released.
 */
export async function uploadInParts(target: PartUploadTarget, body: AsyncIterable<Buffer | string>, options: PartUploadOptions): Promise<{ etag: string }> {
  const { client, bucket, objectName } = target;
  const { size, partSize, budget, mismatch } = options;
  const firstCapacity = size !== undefined && size <= partSize ? size : partSize;
  const held: Buffer[] = [];
  const tryTake = (bytes: number) => {
    const buffer = budget.tryTake(bytes);
    if (buffer) held.push(buffer);
    return buffer;
  };

  // Asked for before the first await: the puts of one recording to several locations ask together (see TransferBudget).
  const first = budget.take(firstCapacity);
  let filling = await first;
  held.push(filling);
  let offset = 0;
  let total = 0;
  let uploadId: string | undefined;
  let partNumber = 0;
  const parts: { part: number; etag: string }[] = [];
  /** The part on the wire and its buffer, free again once it settles. */
  let inFlight: { done: Promise<void>; buffer: Buffer } | undefined;

  const send = (buffer: Buffer, length: number): { done: Promise<void>; buffer: Buffer } => {
    const part = ++partNumber;
    const done = client
      .uploadPart({ bucketName: bucket, objectName, uploadID: encodeURIComponent(uploadId!), partNumber: part, headers: {} }, buffer.subarray(0, length))
      .then((result) => {
        parts.push({ part, etag: stripQuotes(result.etag) });
      });
    // Awaited before the next part goes; until then a failure must not count as unhandled.
    done.catch(() => undefined);
    return { done, buffer };
  };

  /** `filling` is full and more bytes follow: it goes on the wire, and another buffer takes the next part. */
  const partFull = async () => {
    uploadId ??= await client.initiateNewMultipartUpload(bucket, objectName, { ...target.headers });
    const previous = inFlight;
    if (previous) await previous.done;
    inFlight = send(filling, filling.length);
    const next = previous?.buffer ?? tryTake(partSize);
    if (next) {
      filling = next;
    } else {
      // No room for a second buffer: this upload goes one part at a time.
      await inFlight.done;
      inFlight = undefined;
    }
    offset = 0;
  };

  try {
    for await (const piece of body) {
      let chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
      total += chunk.length;
      if (size !== undefined && total > size) throw mismatch(total);
      while (chunk.length > 0) {
        if (offset === filling.length) await partFull();
        const copied = chunk.copy(filling, offset, 0, Math.min(chunk.length, filling.length - offset));
        offset += copied;
        chunk = chunk.subarray(copied);
      }
    }
    if (size !== undefined && total !== size) throw mismatch(total);
    if (uploadId === undefined) return await putBuffer(target, filling.subarray(0, offset));
    if (inFlight) await inFlight.done;
    inFlight = send(filling, offset);
    await inFlight.done;
    parts.sort((a, b) => a.part - b.part);
    const completed = await client.completeMultipartUpload(bucket, objectName, uploadId, parts);
    return { etag: stripQuotes(completed.etag) };
  } catch (err) {
    if (inFlight) await inFlight.done.catch(() => undefined);
    if (uploadId !== undefined) await client.abortMultipartUpload(bucket, objectName, encodeURIComponent(uploadId)).catch(() => undefined);
    throw err;
  } finally {
    // A buffer goes back only once no request reads it any more (the catch above waited for the one on the wire).
    if (inFlight) await inFlight.done.catch(() => undefined);
    for (const buffer of held) budget.give(buffer);
  }
}
