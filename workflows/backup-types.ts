// Shapes shared by the backup workflow, its activities and its callers (types only: safe in the workflow sandbox).
import type { Artifact } from '../src/catalog/manifest';

export type { Artifact };

export interface BackupInput {
  /** The deployment's name (configuration deployment.name); the workflow id is backup-<deployment>. */
  deployment: string;
  target?: 'production' | 'staging';
  reason?: string;
  requestedBy?: string;
  /** Deep verify: also restore the dump into a scratch database and compare row counts. */
  deep?: boolean;
  tags?: string[];
  /** A restore's safety snapshot: its parent restore holds the deployment's lock, and this backup runs under it. */
  underParentLock?: boolean;
}

export interface PrepareResult {
  primary: string;
  locations: { name: string; region: string }[];
  previousBackupId?: string;
}

export interface CaptureResult {
  quiesce: { startedAt: string; endedAt: string; pauseMs: number; recordingsPoint: string; databasePoint?: string };
  postgres: { serverVersion: string; database: string; rowCounts: Record<string, number> };
  db: Artifact;
  /** Table parts of the dump by manifest name (`db:<schema.table>`); empty or absent when the dump is one artifact. */
  dbParts?: Record<string, Artifact>;
  connectors: Artifact;
  connectorCount: number;
}

export interface RecordingsSnapshot {
  objects: number;
  bytes: number;
  /** Objects written after the consistent point, left to the next backup. */
  newerThanPoint: number;
}

export interface SyncResult {
  objects: number;
  bytes: number;
  copiedObjects: number;
  copiedBytes: number;
  reusedObjects: number;
  /** Objects a crashed earlier attempt had already copied: found, checked and not copied again. */
  resumedObjects: number;
  /** Recordings the previous backup holds whose blob was missing or damaged at the primary: copied again (counted in copiedObjects). */
  healedObjects: number;
  index: Artifact;
  /**
   * Locations other than the primary that left the copy (a write failed) in any attempt: they may lack some of the
   * blobs this backup wrote. Every other location took each of them in the same pass as the primary.
   */
  locationsLeftOut?: string[];
}

export interface VerifyResult {
  level: 'standard' | 'deep';
  verifiedAt: string;
  dumpEntries: number;
  blobsChecked: number;
  /** Blobs this backup wrote that its copy confirmed as it wrote them (a backup's own verify), not asked about again. */
  blobsConfirmed?: number;
  /** Blobs read and opened (a sample in a backup's own verify: a large one up to its first MiB). */
  blobsRead: number;
  deepRowCounts?: Record<string, number>;
}

export interface ReplicateResult {
  location: string;
  artifacts: number;
  blobsCopied: number;
  blobsPresent: number;
  /** Blobs this backup wrote to that location in the copy's own pass: not looked up there again. */
  blobsWrittenByCopy?: number;
  /** Entries identical to the baseline's (the newest backup committed at that location): not looked up there. */
  blobsShared: number;
  baselineBackupId?: string;
  bytesCopied: number;
}

export type BackupStep =
  | 'starting'
  | 'prepare'
  | 'quiesce'
  | 'dump'
  | 'snapshot-recordings'
  | 'sync-recordings'
  | 'verify'
  | 'replicate'
  | 'commit'
  | 'prune'
  | 'compensate'
  | 'done';

export interface BackupProgress {
  backupId: string;
  step: BackupStep;
  status: 'running' | 'committed' | 'failed';
  stepsDone: BackupStep[];
  recordings?: { objects: number; bytes: number };
  dumpBytes?: number;
  pauseMs?: number;
  error?: string;
}

export interface BackupResult {
  backupId: string;
  deployment: string;
  locations: string[];
  pauseMs: number;
  dumpBytes: number;
  recordings: { objects: number; bytes: number; copiedObjects: number; copiedBytes: number; reusedObjects: number };
  verify: VerifyResult;
  /** Backups the retention policy removed after this one committed, and the blobs no backup referenced any more. */
  pruned?: { removed: string[]; blobsRemoved: number; keptForPins?: string[] };
}
