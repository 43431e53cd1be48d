// Shapes shared by the restore workflows, their activities and callers (types only: safe in the workflow sandbox).
import type { BackupArtifacts } from '../src/catalog/database-parts';
import type { SignedStatement } from '../src/approvals/signed-statement';
import type { LossReport } from '../src/restore/loss-report';

export type { LossReport, SignedStatement };

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
  /** Informational only: the report's requestedBy comes from the verified `request`. */
  requestedBy?: string;
  /**
   * The requester's signed restore-request (describes exactly this input). Required by targets whose restores need
   * approvals; verified before anything else, and again before anything is stopped.
   */
  request?: SignedStatement;
  /** Pre-confirmed: no Update is awaited. Only for targets that need no approval (staging drills). */
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
  /** The consistent point by the bucket's clock (to the second): what the loss report counts recordings from. */
  recordingsPoint: string;
  /** The consistent point by the database's clock (to the microsecond): what the loss report counts rows from. */
  databasePoint?: string;
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
  /** Histories from before signed approvals; ignored now (the approval's principal is who confirmed). */
  confirmedBy?: string;
  /** A signed restore-approval of this run, backup and loss report; required when the target needs approvals. */
  approval?: SignedStatement;
  /** Required when the preflight found recordings in no location: their digest, or a count (at most that many). */
  acceptUnrecoverable?: UnrecoverableAcceptance;
}

export interface RestoreApproval {
  principal: string;
  /** The approval's issuedAt. */
  at: string;
  breakGlass?: { reason: string };
}

export type RestoreStep =
  | 'authorize'
  | 'lock'
  | 'preflight'
  | 'backup-moment'
  | 'loss-report'
  | 'awaiting-confirmation'
  | 'safety-snapshot'
  | 'stop'
  | 'restore-database'
  | 'plan-recordings'
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
  /**
   * A restore to a moment of point-in-time protection: the backup made from that moment (it is `backup`), and the
   * base backup, recordings checkpoint and connector export it was made from.
   */
  moment?: { at: string; backupId: string; baseId: string; segments: number; checkpointId: string; checkpointCoveredAt: string; exportId: string; exportedAt: string };
  lossReport?: LossReport;
  lossReportDigest?: string;
  /** The principal of the verified signed request (absent when the restore was started without one). */
  requestedBy?: string;
  /** How many approvals from distinct principals, none the requester, this target needs (the worker's policy). */
  approvalsRequired?: number;
  /** Verified approvals, in the order they came. */
  approvals?: RestoreApproval[];
  /** Set when one break-glass approval stood for all required ones. */
  breakGlass?: { principal: string; reason: string };
  /** The approvers, joined with ", " (or who confirmed, for restores that need no approval). */
  confirmedBy?: string;
  /** Webhook announcements and how they went (a failed one never fails the restore). */
  notifications?: { event: string; delivered: boolean; attempts: number; error?: string }[];
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
  /** Stop to smoke test passed, in ms: the control plane serves again (full restores restore recordings after it). */
  rtoMs?: number;
  /** Full restores: stop to every recording restored, in ms (after rtoMs: the recordings are restored behind the serving control plane). */
  recordingsCompleteMs?: number;
  /**
   * Full restores: where the recordings stand. `planned` is the number of keys the restore changes (quarantined and/or
   * put back); the object count of the step in flight is in its heartbeat (`done`).
   */
  recordingsProgress?: { state: 'planned' | 'restoring' | 'complete'; planned: number };
  error?: string;
  /** `note`: what an undo kept for the operator (e.g. the database as it served between restart and rollback). */
  rollback?: { step: string; ok: boolean; error?: string; note?: string }[];
  /** Whether the outcome reached the audit trail and, for a completed full restore, the restored VaultPAM's own audit log. */
  audit?: { trail: AuditRecording; vaultpamLog?: AuditRecording & { id?: string } };
}

/** A recording that failed is reported, never undoes what it describes. */
export interface AuditRecording {
  recorded: boolean;
  error?: string;
}
