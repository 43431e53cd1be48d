// Shapes shared by the restore workflows, their activities and callers (types only: safe in the workflow sandbox).
import type { BackupArtifacts } from '../src/catalog/database-parts';
import type { LossReport } from '../src/restore/loss-report';

export type { LossReport };

export type RestoreScope = { kind: 'full' } | { kind: 'resource'; resourceId: string };

export interface RestoreInput {
  /** Whose backups: the catalog's deployment name (production's, also for a drill into staging). */
  deployment: string;
  /** Where to restore. @default 'production' */
  target?: 'production' | 'staging';
  /** The target's own deployment name (its safety snapshot is catalogued under it). @default deployment */
  targetDeployment?: string;
  /** A backup id, or `at` (the newest committed backup started at or before it), not both. */
  backupId?: string;
  at?: string;
  scope?: RestoreScope;
  reason?: string;
  requestedBy?: string;
  /** Pre-confirmed (drills and scripts): no Update is awaited. */
  confirmed?: boolean;
  /** How long to wait for the confirmation. @default '1 hour' */
  confirmTimeout?: string;
  /** Back up the target first, so the restore itself can be undone. @default true for production */
  safetySnapshot?: boolean;
  /**
   * Pre-confirmed restores only: accept the loss of the recordings the preflight finds in no location, by the digest
   * of their list (RecordingsCheck.unrecoverable.digest) or by a count (at most that many). @default none accepted
   */
  acceptUnrecoverable?: UnrecoverableAcceptance;
}

/** The digest of the list of recordings accepted as lost, or the most that may be lost. */
export type UnrecoverableAcceptance = string | number;

/** A recording served from a location other than the first one tried, and what was wrong before it. */
export interface ServedElsewhere {
  count: number;
  /** The first few (bounded). */
  examples: { key: string; location: string; skipped: { location: string; problem: string }[] }[];
}

/** The preflight's check of every blob a full restore will read: presence, size and header key check. */
export interface RecordingsCheck {
  checked: number;
  /** Recordings whose first location failed the check and another passed. */
  elsewhere: number;
  unrecoverable: {
    count: number;
    /** SHA-256 of the keys, one a line, in index order: what a confirmation echoes to accept their loss. */
    digest: string;
    /** The first few (bounded), with what was wrong at each location. */
    recordings: { key: string; problems: { location: string; problem: string }[] }[];
  };
}

export interface RecordingsResult {
  restored: number;
  quarantined: number;
  unchanged: number;
  /** Recordings of the backup not restored because the confirmation accepted their loss. */
  unrecoverable: number;
  servedElsewhere: ServedElsewhere;
}

export interface ResolvedBackup {
  backupId: string;
  startedAt: string;
  /** The consistent point: what the loss report counts from. */
  recordingsPoint: string;
  /** The location whose copy verified (the first one that did). */
  location: string;
  /** Locations tried before it, with what was wrong there. */
  skipped: { location: string; problem: string }[];
  /** With the database's table parts when the dump was split. */
  artifacts: BackupArtifacts;
  rowCounts: Record<string, number>;
  /** The recordings the backup holds (the loss report's "brought back" side). */
  recordings?: { objects: number; bytes: number };
}

export interface ConfirmArgs {
  backupId: string;
  /** lossReportDigest(report): proves the confirmer saw this report. */
  lossReportDigest: string;
  confirmedBy?: string;
  /** Required when the preflight found recordings in no location: their digest, or a count (at most that many). */
  acceptUnrecoverable?: UnrecoverableAcceptance;
}

export type RestoreStep =
  | 'lock'
  | 'preflight'
  | 'loss-report'
  | 'awaiting-confirmation'
  | 'safety-snapshot'
  | 'stop'
  | 'restore-database'
  | 'restore-recordings'
  | 'restart'
  | 'import-connectors'
  | 'verify'
  | 'smoke-test'
  | 'rollback'
  | 'done';

export interface RestoreReport {
  restoreId: string;
  deployment: string;
  target: 'production' | 'staging';
  scope: RestoreScope;
  /** `refused`: failed before any change (lock, preflight, loss report, safety snapshot); `failed`: the rollback itself did not complete. */
  status: 'running' | 'awaiting-confirmation' | 'completed' | 'rolled-back' | 'failed' | 'not-confirmed' | 'refused';
  step: RestoreStep;
  backup?: ResolvedBackup;
  lossReport?: LossReport;
  lossReportDigest?: string;
  confirmedBy?: string;
  safetySnapshotId?: string;
  /** The pre-restore database kept until cleanup (full restores). */
  previousDatabase?: string;
  /** How many recordings found nowhere the confirmation accepted to lose. */
  acceptedUnrecoverable?: number;
  /** Full restores: every recording's blob checked before anything stops. */
  recordingsCheck?: RecordingsCheck;
  /** Scoped restores fill only the counts. */
  recordings?: Partial<RecordingsResult> & { restored: number; quarantined: number; unchanged: number };
  verify?: { expected: Record<string, number>; found: Record<string, number> };
  smokeTest?: { resourceId: string; sessionId: string };
  /** Stop to smoke test passed, in ms. */
  rtoMs?: number;
  error?: string;
  rollback?: { step: string; ok: boolean; error?: string }[];
}
