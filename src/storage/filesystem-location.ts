// Backup location on a local or mounted filesystem: atomic writes by rename, keys as relative paths.
import { randomBytes } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { LocationConfig } from '../config/schema';
import type { BackupLocation, ByteRange, ListedObject, ObjectHead, ObjectStat, PutResult } from './backup-location';
import { TEMP_FILE_MARKER, assertValidKey, assertValidPrefix, normaliseRootPrefix } from './object-key';
import { LocationUnavailableError, NotFoundError, SizeMismatchError } from './storage-errors';

export type FilesystemLocationConfig = Extract<LocationConfig, { kind: 'filesystem' }>;

/** Parallel unlinks per delete() call: enough to hide latency on network mounts, few enough to stay polite. */
const DELETE_CONCURRENCY = 16;

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isMissing(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Sort key matching S3's order of full keys: a directory sorts as "name/", so "a-b" comes before "a/x". */
function entryOrder(entry: Dirent): string {
  return entry.isDirectory() ? `${entry.name}/` : entry.name;
}

/** Bytes gathered before one vectored write. */
const WRITE_BATCH = 1024 * 1024;

/** Writes `buffers` at the handle's position, all of them: a short write goes on from where it stopped. */
async function writeWhole(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  const pending = buffers.filter((b) => b.length > 0);
  while (pending.length) {
    let { bytesWritten } = await handle.writev(pending);
    if (bytesWritten === 0) throw new Error('the file system took no bytes of a write');
    while (pending.length && bytesWritten >= pending[0]!.length) bytesWritten -= pending.shift()!.length;
    if (bytesWritten > 0) pending[0] = pending[0]!.subarray(bytesWritten);
  }
}

export class FilesystemLocation implements BackupLocation {
  readonly kind = 'filesystem' as const;
  readonly name: string;
  readonly region: string;
  /** Absolute directory that key "" maps to (configured path joined with the prefix). */
  readonly root: string;

  constructor(config: FilesystemLocationConfig) {
    this.name = config.name;
    this.region = config.region;
    this.root = resolve(config.path, normaliseRootPrefix(config.prefix));
  }

  describe(): string {
    return `file://${this.root} (region ${this.region})`;
  }

  private pathOf(key: string): string {
    assertValidKey(key);
    return join(this.root, ...key.split('/'));
  }

  async ensureReady(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      await access(this.root, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (err) {
      throw new LocationUnavailableError(
        this.name,
        `location "${this.name}" (${this.describe()}) is not usable: ${errorCode(err) ?? (err as Error).message} on ${this.root}; check that the path exists or can be created and is writable by this user`,
        { cause: err },
      );
    }
  }

  /**
   * Directories this location made or found: a put into one of them opens its temporary file at once, without a
   * mkdir first. A concurrent delete() may prune one (it removes directories left empty), so a failed open makes it again.
   */
  private readonly knownDirectories = new Set<string>();

  /** Opens a fresh temporary file beside the target; a concurrent delete() may prune the directory, so retry. */
  private async openTemp(directory: string): Promise<{ handle: FileHandle; path: string }> {
    for (let attempt = 0; ; attempt += 1) {
      if (!this.knownDirectories.has(directory)) {
        await mkdir(directory, { recursive: true });
        if (this.knownDirectories.size >= 4096) this.knownDirectories.clear();
        this.knownDirectories.add(directory);
      }
      const path = join(directory, `${TEMP_FILE_MARKER}${randomBytes(8).toString('hex')}`);
      try {
        return { handle: await open(path, 'wx', 0o600), path };
      } catch (err) {
        this.knownDirectories.delete(directory);
        if (errorCode(err) !== 'ENOENT' || attempt >= 4) throw err;
      }
    }
  }

  async put(key: string, body: Readable | Buffer, size?: number): Promise<PutResult> {
    const target = this.pathOf(key);
    const directory = dirname(target);
    const { handle, path: temp } = await this.openTemp(directory);
    let closed = false;
    let committed = false;
    try {
      let written = 0;
      if (Buffer.isBuffer(body)) {
        await writeWhole(handle, [body]);
        written = body.length;
      } else {
        // Chunks are gathered into one vectored write of up to WRITE_BATCH bytes: a small recording's blob is one
        // write, a large one's a few hundred, each one call into the thread pool.
        let batch: Buffer[] = [];
        let batched = 0;
        try {
          for await (const piece of body as AsyncIterable<Buffer | string>) {
            const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
            written += chunk.length;
            if (size !== undefined && written > size) throw new SizeMismatchError(this.name, key, size, written);
            batch.push(chunk);
            batched += chunk.length;
            if (batched >= WRITE_BATCH) {
              await writeWhole(handle, batch);
              batch = [];
              batched = 0;
            }
          }
        } catch (err) {
          body.destroy();
          throw err;
        }
        if (batch.length) await writeWhole(handle, batch);
      }
      if (size !== undefined && written !== size) throw new SizeMismatchError(this.name, key, size, written);
      // Data reaches the disk before the name does, so a crash never exposes a short file under `key`.
      await handle.sync();
      closed = true;
      await handle.close();
      await rename(temp, target);
      committed = true;
      await this.syncPath(directory).catch(() => undefined); // some filesystems refuse fsync on a directory
      return {};
    } finally {
      if (!committed) {
        if (!closed) await handle.close().catch(() => undefined);
        await rm(temp, { force: true }).catch(() => undefined);
      }
    }
  }

  private async syncPath(path: string): Promise<void> {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const path = this.pathOf(key);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (isMissing(err) || errorCode(err) === 'EISDIR') throw new NotFoundError(this.name, key, { cause: err });
      throw err;
    }
    const info = await handle.stat();
    if (!info.isFile()) {
      await handle.close();
      throw new NotFoundError(this.name, key);
    }
    if (range && range.length <= 0) {
      await handle.close();
      return Readable.from([]);
    }
    return handle.createReadStream({ autoClose: true, ...(range ? { start: range.start, end: range.start + range.length - 1 } : {}) });
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    const path = this.pathOf(key);
    try {
      const info = await stat(path);
      return info.isFile() ? { size: info.size } : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async readHead(key: string, length: number): Promise<ObjectHead | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch (err) {
      if (isMissing(err) || errorCode(err) === 'EISDIR') return undefined;
      throw err;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) return undefined;
      const head = Buffer.alloc(Math.max(0, Math.min(length, info.size)));
      let read = 0;
      while (read < head.length) {
        const { bytesRead } = await handle.read(head, read, head.length - read, read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      return { head: head.subarray(0, read), size: info.size };
    } finally {
      await handle.close();
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    assertValidPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    // Start at the deepest directory the prefix names in full; its last segment may be partial.
    yield* this.walk(slash >= 0 ? prefix.slice(0, slash + 1) : '', prefix);
  }

  private async *walk(directoryKey: string, prefix: string): AsyncGenerator<ListedObject> {
    let entries: Dirent[];
    try {
      entries = await readdir(join(this.root, ...directoryKey.split('/').filter(Boolean)), { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    const ordered = entries
      .filter((entry) => !entry.name.startsWith(TEMP_FILE_MARKER))
      .map((entry) => ({ entry, order: entryOrder(entry) }))
      .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    for (const { entry } of ordered) {
      const key = `${directoryKey}${entry.name}`;
      if (entry.isDirectory()) {
        const childPrefix = `${key}/`;
        if (childPrefix.startsWith(prefix) || prefix.startsWith(childPrefix)) yield* this.walk(childPrefix, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        try {
          const info = await stat(join(this.root, ...key.split('/')));
          yield { key, size: info.size };
        } catch (err) {
          if (!isMissing(err)) throw err; // deleted while listing
        }
      }
    }
  }

  async delete(keys: string[]): Promise<void> {
    const paths = keys.map((key) => this.pathOf(key));
    for (let i = 0; i < paths.length; i += DELETE_CONCURRENCY) {
      await Promise.all(paths.slice(i, i + DELETE_CONCURRENCY).map((path) => this.deleteOne(path)));
    }
  }

  private async deleteOne(path: string): Promise<void> {
    try {
      await unlink(path);
    } catch (err) {
      if (isMissing(err)) return;
      // A directory is not an object (Linux says EISDIR, macOS EPERM); anything else is a real failure.
      const code = errorCode(err);
      if ((code === 'EISDIR' || code === 'EPERM') && (await stat(path).catch(() => undefined))?.isDirectory()) return;
      throw err;
    }
    await this.pruneEmptyParents(dirname(path));
  }

  /** Removes directories left empty, up to (not including) the root, so deleted backups leave no husks. */
  private async pruneEmptyParents(directory: string): Promise<void> {
    let current = directory;
    while (current.startsWith(`${this.root}/`)) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty, already gone, or in use by a concurrent put
      }
      current = dirname(current);
    }
  }
}
