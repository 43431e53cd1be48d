// Seed step 5: every artifact readable, non-empty and equal to its checksum; the dump (each part) passes pg_restore --list;
// every recording blob present; deep: the dump restored into a scratch database has the snapshot's row counts.
import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';

import type { TargetName } from '../src/config/load';
import { ArtifactChecksumError, checksumMismatch, hashStored, openArtifact, readAll } from '../src/catalog/artifacts';
import { readManifest } from '../src/catalog/catalog';
import type { Artifact } from '../src/catalog/manifest';
import { CryptoError } from '../src/crypto';
import { encryptedSize } from '../src/crypto/frame-format';
import { InvalidDumpError, createDatabase, dropDatabase, listDump, tableRowCounts } from '../src/postgres';
import { databaseParts, type BackupArtifacts } from '../src/catalog/database-parts';
import { restoreBackupDatabase } from './database-restore';
import type { Dependencies } from '../src/runtime/dependencies';
import { blobKey, isNotFound, manifestKey, type BackupLocation } from '../src/storage';
import { checkManifestMac } from '../src/catalog/manifest-mac';
import type { VerifyResult } from '../workflows/backup-types';
import { blobState, ownBlobOf, readBlobSample, readBlobWhole } from '../src/catalog/recording-blobs';
import { readRecordingsIndex, type IndexEntry } from '../src/catalog/recordings-index';
import { TaskPool, backupDataKey, locationByName } from './backup-context';
import { KEY_TABLES } from './dump';

export interface VerifyInput {
  deployment: string;
  backupId: string;
  target: TargetName;
  location: string;
  /** With the database's table parts when the dump was split. */
  artifacts: BackupArtifacts;
  rowCounts: Record<string, number>;
  deep?: boolean;
  /**
   * Which blobs to key-check (present, right size, header sealed under the index's key): those this backup wrote
   * (`written`: unchanged blobs are the scheduled check's), every one (`all`), or none (`confirmed`, the backup's own
   * verify: its copy confirmed each blob it wrote as it wrote it, the location taking exactly the announced bytes of a
   * blob the copy sealed itself, under a SHA-256 of the payload the S3 server checks, or key-checked each blob an
   * earlier attempt left; only the sample of those blobs is read, each opened up to `SAMPLE_READ_BYTES`).
   * @default 'all'
   */
  blobs?: 'written' | 'all' | 'confirmed';
  /**
   * Blobs read whole and opened: a sample of those key-checked (`sample`, `verify.sampleRecordings` of them), or all.
   * @default 'sample'
   */
  readData?: 'sample' | 'all';
  /**
   * With `blobs: 'confirmed'`: how many of the index's blobs are this backup's own, as its copy counted them. None
   * (an incremental backup with nothing new) leaves nothing to tell apart or sample, so the index is read for its
   * checksum and authenticity only, its entries not parsed.
   */
  ownBlobs?: number;
}

/** Keeps the `size` entries with the smallest sampling rank: a stable, spread-out sample in bounded memory. */
class Sample {
  private readonly kept: { rank: string; entry: IndexEntry }[] = [];
  constructor(private readonly size: number, private readonly seed: string) {}
  offer(entry: IndexEntry): void {
    if (this.size <= 0) return;
    const rank = createHash('sha256').update(`${this.seed}\n${entry.blob}`).digest('hex');
    if (this.kept.length < this.size) this.kept.push({ rank, entry });
    else {
      let worst = 0;
      for (let i = 1; i < this.kept.length; i++) if (this.kept[i]!.rank > this.kept[worst]!.rank) worst = i;
      if (rank < this.kept[worst]!.rank) this.kept[worst] = { rank, entry };
    }
  }
  get entries(): IndexEntry[] {
    return this.kept.map((k) => k.entry);
  }
}

/**
 * Plaintext bytes a `confirmed` verify opens of each sampled blob: a small recording whole, a large one's first chunks.
 * Reading 16 recordings of 64 MiB whole would cost more than copying them did.
 */
export const SAMPLE_READ_BYTES = 1024 * 1024;

function corrupt(location: BackupLocation, what: string, detail: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'BackupCorrupt', message: `${what} at ${location.describe()}: ${detail}`, nonRetryable: true });
}

/** Reads a stream to its end, counting its bytes, for what reading it checks (an artifact's checksum and tags). */
async function drain(stream: AsyncIterable<Buffer>, onBytes: (bytes: number) => void): Promise<void> {
  let bytes = 0;
  let reported = 0;
  for await (const chunk of stream) {
    bytes += chunk.length;
    if (bytes - reported >= 8 * 1024 * 1024) {
      reported = bytes;
      onBytes(bytes);
    }
  }
}

/** Checks size and stored checksum of each artifact without decrypting: the cheap test, run at every location. */
export async function verifyChecksums(location: BackupLocation, artifacts: Record<string, Artifact>, onBytes?: (n: number) => void): Promise<void> {
  for (const [name, artifact] of Object.entries(artifacts)) {
    if (artifact.plaintextBytes === 0 && name === 'db') throw corrupt(location, name, 'the dump is empty');
    let stored;
    try {
      stored = await hashStored(location, artifact.key, onBytes);
    } catch (err) {
      throw corrupt(location, artifact.key, (err as Error).message);
    }
    const mismatch = checksumMismatch(stored, artifact);
    if (mismatch) throw corrupt(location, artifact.key, mismatch);
  }
}

export function createVerifyActivities(deps: Dependencies) {
  return {
    async verifyBackup(input: VerifyInput): Promise<VerifyResult> {
      const ctx = Context.current();
      const location = locationByName(deps, input.location);
      const dataKey = await backupDataKey(deps, input.deployment, input.backupId);
      const pgConfig = deps.deployment(input.target).postgres;
      const password = deps.postgresPassword(input.target);

      // One read of each artifact: opening it hashes the stored bytes against the recorded size and SHA-256 (checked at
      // its end) while decrypting authenticates it chunk by chunk (GCM), and pg_restore --list, the connectors' parse
      // and the index's entries read what comes out. Damage found either way is this location's, named, not retried.
      const intact = async <T>(artifact: Artifact, read: () => Promise<T>): Promise<T> => {
        try {
          return await read();
        } catch (err) {
          if (err instanceof ArtifactChecksumError) throw corrupt(location, artifact.key, err.detail);
          if (err instanceof CryptoError || err instanceof InvalidDumpError) throw corrupt(location, artifact.key, err.message);
          if (isNotFound(err)) throw corrupt(location, artifact.key, 'it is missing');
          throw err;
        }
      };
      if (input.artifacts.db.plaintextBytes === 0) throw corrupt(location, 'db', 'the dump is empty');
      const listing = await intact(input.artifacts.db, async () =>
        listDump(await openArtifact(location, input.artifacts.db, dataKey), {
          config: pgConfig,
          signal: ctx.cancellationSignal,
          onProgress: (progress) => ctx.heartbeat(progress),
        }),
      );
      const missingTables = KEY_TABLES.filter((t) => !listing.tables.some((name) => name === t || name.endsWith(`.${t}`)));
      if (missingTables.length) throw corrupt(location, 'the dump', `it has no table ${missingTables.join(', ')}`);
      let dumpEntries = listing.entries;
      // Each table part: readable by pg_restore, authentic to its last byte, and holding the rows of its table only.
      for (const part of databaseParts(input.artifacts)) {
        const partListing = await intact(part.artifact, async () =>
          listDump(await openArtifact(location, part.artifact, dataKey), {
            config: pgConfig,
            signal: ctx.cancellationSignal,
            onProgress: (progress) => ctx.heartbeat({ ...progress, part: part.table }),
          }),
        );
        if (!partListing.tablesWithData.includes(part.table)) throw corrupt(location, `the dump's part ${part.artifact.key}`, `it holds no rows of ${part.table}`);
        if (!listing.tables.includes(part.table)) throw corrupt(location, 'the dump', `its main archive does not define ${part.table}, whose rows ${part.artifact.key} holds`);
        dumpEntries += partListing.entries;
      }

      const connectorsText = await intact(input.artifacts.connectors, async () => (await readAll(await openArtifact(location, input.artifacts.connectors, dataKey))).toString('utf8'));
      let connectors: { connectors?: unknown[] } | null;
      try {
        connectors = JSON.parse(connectorsText || 'null') as { connectors?: unknown[] } | null;
      } catch {
        connectors = null;
      }
      if (!connectors || !Array.isArray(connectors.connectors)) throw corrupt(location, 'the connector inventory', 'it is not an inventory document');

      let blobsChecked = 0;
      let blobsConfirmed = 0;
      let blobsRead = 0;
      const scope = input.blobs ?? 'all';
      const readAllData = input.readData === 'all';
      const sample = new Sample(readAllData ? 0 : deps.config.verify.sampleRecordings, input.backupId);
      const pool = new TaskPool(16);
      const readWhole = async (entry: IndexEntry) => {
        try {
          const onBytes = () => ctx.heartbeat({ phase: 'read', blobsRead });
          if (scope === 'confirmed' && !readAllData) await readBlobSample(location, input.deployment, entry, SAMPLE_READ_BYTES, onBytes);
          else await readBlobWhole(location, input.deployment, entry, onBytes);
        } catch (err) {
          throw corrupt(location, `the blob of recording ${entry.key} (${entry.blob})`, (err as Error).message);
        }
        blobsRead += 1;
      };
      let entriesRead = 0;
      const readIndex = async () => {
        if (scope === 'confirmed' && !readAllData && input.ownBlobs === 0) {
          // Nothing of this backup's own to sample: the index is read for its checksum and tags only.
          await drain(await openArtifact(location, input.artifacts.recordingsIndex, dataKey), (bytes) => ctx.heartbeat({ phase: 'index', bytes }));
          return;
        }
        for await (const entry of readRecordingsIndex(location, input.artifacts.recordingsIndex, dataKey)) {
          // An index of a million entries that this backup mostly shares is read without a blob to check: it beats too.
          if (++entriesRead % 5000 === 0) ctx.heartbeat({ phase: 'index', entriesRead, blobsChecked });
          if (scope !== 'all' && ownBlobOf(dataKey, entry).blob !== entry.blob) continue;
          if (scope === 'confirmed' && !readAllData) {
            blobsConfirmed += 1;
            sample.offer(entry);
            continue;
          }
          await pool.run(async () => {
            const key = blobKey(input.deployment, entry.blob);
            const what = `the blob of recording ${entry.key} (${entry.blob})`;
            // One ranged read gives the size and the header: presence, size and key for one round trip per blob.
            const found = await blobState(location, key, Buffer.from(entry.blobKey, 'base64'));
            if (!found) throw corrupt(location, what, 'it is missing');
            if (found.size !== encryptedSize(entry.size)) throw corrupt(location, what, `${found.size} bytes, expected ${encryptedSize(entry.size)}`);
            if (readAllData) await readWhole(entry);
            else if (!found.sealed) throw corrupt(location, what, 'its header was not sealed with the key the index names');
            else sample.offer(entry);
            blobsChecked += 1;
            if (blobsChecked % 200 === 0) ctx.heartbeat({ phase: 'blobs', blobsChecked });
          });
        }
      };
      await intact(input.artifacts.recordingsIndex, readIndex);
      await pool.drain();
      // An artifact none of the reads above opened (none today) is still checked against its checksum.
      const opened = new Set([input.artifacts.db, input.artifacts.connectors, input.artifacts.recordingsIndex, ...databaseParts(input.artifacts).map((p) => p.artifact)].map((a) => a.key));
      await verifyChecksums(
        location,
        Object.fromEntries(Object.entries(input.artifacts).filter(([, artifact]) => !opened.has(artifact.key))),
        (bytes) => ctx.heartbeat({ phase: 'checksums', bytes }),
      );
      for (const entry of sample.entries) await pool.run(() => readWhole(entry));
      await pool.drain();

      let deepRowCounts: Record<string, number> | undefined;
      if (input.deep) {
        const scratch = `vpb_verify_${input.backupId.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`.slice(0, 63);
        await dropDatabase(pgConfig, password, scratch, { ifExists: true, force: true });
        await createDatabase(pgConfig, password, scratch);
        try {
          await restoreBackupDatabase({
            location,
            artifacts: input.artifacts,
            dataKey,
            config: pgConfig,
            password,
            database: scratch,
            jobs: deps.config.backup.parallelDump.jobs,
            signal: ctx.cancellationSignal,
            onProgress: (progress) => ctx.heartbeat({ ...progress, deep: true }),
          });
          deepRowCounts = await tableRowCounts(pgConfig, password, scratch, Object.keys(input.rowCounts), (progress) => ctx.heartbeat({ ...progress, deep: true }));
          const differing = Object.keys(input.rowCounts).filter((t) => deepRowCounts![t] !== input.rowCounts[t]);
          if (differing.length) {
            throw corrupt(location, 'the restored dump', differing.map((t) => `${t} has ${deepRowCounts![t]} rows, the snapshot had ${input.rowCounts[t]}`).join('; '));
          }
        } finally {
          await dropDatabase(pgConfig, password, scratch, { ifExists: true, force: true }).catch(() => undefined);
        }
      }
      return {
        level: input.deep ? 'deep' : 'standard',
        verifiedAt: deps.now().toISOString(),
        dumpEntries,
        blobsChecked,
        ...(blobsConfirmed ? { blobsConfirmed } : {}),
        blobsRead,
        ...(deepRowCounts ? { deepRowCounts } : {}),
      };
    },
  };
}

export interface CommittedBackup {
  backupId: string;
  startedAt: string;
  artifacts: VerifyInput['artifacts'];
  rowCounts: Record<string, number>;
  /** Locations with a readable manifest, and the problems found at the others. */
  locations: { name: string; problem?: string }[];
}

/** Reads a committed backup's manifest at every location (for verify and restore): small facts only. */
export function createCatalogActivities(deps: Dependencies) {
  return {
    async describeBackup(input: { deployment: string; backupId: string }): Promise<CommittedBackup> {
      let found: Awaited<ReturnType<typeof readManifest>>;
      const locations: CommittedBackup['locations'] = [];
      for (const location of deps.locations()) {
        try {
          const manifest = await readManifest(location, input.deployment, input.backupId);
          if (manifest) {
            // A manifest that fails its MAC (or whose MAC key is not in the ring) is a problem of that location.
            checkManifestMac(manifest, deps.keyRing(), `${location.describe()}/${manifestKey(input.deployment, input.backupId)}`);
            found ??= manifest;
            locations.push({ name: location.name });
          } else locations.push({ name: location.name, problem: 'no manifest' });
        } catch (err) {
          found ??= await readManifest(location, input.deployment, input.backupId).catch(() => undefined);
          locations.push({ name: location.name, problem: (err as Error).message });
        }
      }
      if (!found) {
        throw ApplicationFailure.create({
          type: 'BackupNotFound',
          nonRetryable: true,
          message: `no location holds a manifest of backup ${input.backupId} of ${input.deployment} (list them with: vaultpam-backup backups list)`,
        });
      }
      return { backupId: found.backupId, startedAt: found.startedAt, artifacts: found.artifacts, rowCounts: found.postgres.rowCounts, locations };
    },
  };
}
