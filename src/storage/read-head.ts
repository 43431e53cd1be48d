// An object's first bytes and size: in one request where the driver offers it, else a stat and a ranged get.
import { isNotFound } from './storage-errors';
import type { BackupLocation, ObjectHead } from './backup-location';

/** The stat-then-get way, for drivers that cannot tell an object's size along with a ranged read. */
export async function readHeadByStat(location: BackupLocation, key: string, length: number): Promise<ObjectHead | undefined> {
  const stat = await location.stat(key);
  if (!stat) return undefined;
  if (stat.size === 0 || length <= 0) return { head: Buffer.alloc(0), size: stat.size };
  let stream;
  try {
    stream = await location.get(key, { start: 0, length: Math.min(length, stat.size) });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const parts: Buffer[] = [];
  let read = 0;
  try {
    for await (const part of stream as AsyncIterable<Buffer>) {
      parts.push(part);
      read += part.length;
      if (read >= length) break;
    }
  } finally {
    stream.destroy();
  }
  return { head: Buffer.concat(parts).subarray(0, length), size: stat.size };
}

/** `location`'s first `length` bytes under `key` and the object's size; undefined when there is no object. */
export function readHeadOf(location: BackupLocation, key: string, length: number): Promise<ObjectHead | undefined> {
  return location.readHead ? location.readHead(key, length) : readHeadByStat(location, key, length);
}
