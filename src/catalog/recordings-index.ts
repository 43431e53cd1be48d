// A backup's recordings index: one line per recording (bucket key, size, ETag) naming the blob that holds it and its key.
import type { BackupLocation } from '../storage';
import { readJsonLines } from './json-lines';
import type { Artifact } from './manifest';

/** One object of the recordings bucket as listed at the backup's consistent point. */
export interface RecordingEntry {
  /** Object key in the recordings bucket. */
  key: string;
  /** Plaintext bytes. */
  size: number;
  /** The bucket's ETag, without quotes. */
  etag: string;
}

/** One line of a recordings index (format 2): the recording, where its ciphertext is, and the key that opens it. */
export interface IndexEntry extends RecordingEntry {
  /** The blob's name under `<deployment>/blobs/`: `xx/<64 hex>` (format 2) or `<64 hex>` (format 1). */
  blob: string;
  /** The blob's own AES-256 key, base64; the index itself is encrypted under the backup's data key. */
  blobKey: string;
}

/** Format 1 wrote short field names; they are read as format 2 entries. */
interface IndexEntryV1 {
  k: string;
  s: number;
  e: string;
  b: string;
  bk: string;
}

function normalise(line: IndexEntry | IndexEntryV1): IndexEntry {
  if ('k' in line) return { key: line.k, size: line.s, etag: line.e, blob: line.b, blobKey: line.bk };
  return line;
}

/** Every entry of a recordings index, in the order it was written (the bucket listing's key order). */
export async function* readRecordingsIndex(location: BackupLocation, artifact: Artifact, dataKey: Buffer): AsyncGenerator<IndexEntry> {
  for await (const line of readJsonLines<IndexEntry | IndexEntryV1>(location, artifact, dataKey)) yield normalise(line);
}

/** The recordings listing a backup takes at its consistent point (same order as the bucket lists). */
export async function* readRecordingsListing(location: BackupLocation, artifact: Artifact, dataKey: Buffer): AsyncGenerator<RecordingEntry> {
  for await (const line of readJsonLines<RecordingEntry | { k: string; s: number; e: string }>(location, artifact, dataKey)) {
    yield 'k' in line ? { key: line.k, size: line.s, etag: line.e } : line;
  }
}
