// Shapes shared by the restore workflows, their activities and callers (types only: safe in the workflow sandbox).
import type { Artifact } from '../src/catalog/manifest';
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
  artifacts: { db: Artifact; connectors: Artifact; recordingsIndex: Artifact };
  rowCounts: Record<string, number>;
  /** The recordings the backup holds (the loss report's "brought back" side). */
  recordings?: { objects: number; bytes: number };
}

export interface ConfirmArgs {
  backupId: string;
  /** lossReportDigest(report): proves the confirmer saw this report. */
  lossReportDigest: string;
  confirmedBy?: string;
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
  recordings?: { restored: number; quarantined: number; unchanged: number };
  verify?: { expected: Record<string, number>; found: Record<string, number> };
  smokeTest?: { resourceId: string; sessionId: string };
  /** Stop to smoke test passed, in ms. */
  rtoMs?: number;
  error?: string;
  rollback?: { step: string; ok: boolean; error?: string }[];
}
