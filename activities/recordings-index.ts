// The one reader of a backup's recordings index for the restore: entries in stored order, under explicit field names.
import type { Artifact } from '../src/catalog/manifest';
import type { BackupLocation } from '../src/storage';
import type { IndexEntry } from './backup-context';
import { readJsonLines } from './sync';

/** One recording of a backup: its object key and identity in the bucket, and where its ciphertext is. */
export interface RecordingEntry {
  key: string;
  size: number;
  etag: string;
  /** Blob id: the blob's object key is blobKey(deployment, blob). */
  blob: string;
  /** The blob's own AES-256 key, base64. */
  blobKey: string;
}

/** Entries in the order the index holds them (the order of the bucket listing it was made from). */
export async function* readIndexEntries(location: BackupLocation, index: Artifact, dataKey: Buffer): AsyncGenerator<RecordingEntry> {
  for await (const e of readJsonLines<IndexEntry>(location, index, dataKey)) {
    yield { key: e.k, size: e.s, etag: e.e, blob: e.b, blobKey: e.bk };
  }
}
