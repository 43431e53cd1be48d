// The protection workflow's input, signal, query and answers (shared by the workflow, the operations and the CLI).
import type { TargetName } from '../src/config/load';

export const STOP_PROTECTION_SIGNAL = 'stopProtection';
export const PROTECTION_MARKS_QUERY = 'marks';

export function protectWorkflowId(deployment: string): string {
  return `protect-${deployment}`;
}

export interface ProtectInput {
  target: TargetName;
  /**
   * The deployment's name: given, each slice also takes a recordings checkpoint and a connector export (when the
   * inventory changed) beside the WAL stream, so the bucket and the inventory follow the database's moments.
   */
  deployment?: string;
  /** deployment.pointInTime.baseBackupEveryHours, read by whoever starts the workflow. */
  baseBackupEveryHours: number;
  /** Overrides deployment.pointInTime.sliceSeconds / partialUploadSeconds (tests use seconds). */
  sliceSeconds?: number;
  partialUploadSeconds?: number;
  /** Heartbeat timeout of a slice: a worker that dies mid-slice is noticed this fast. @default 30 */
  heartbeatSeconds?: number;
  /** Slices before continue-as-new, which keeps the history small. @default 100 */
  slicesPerRun?: number;
  /** Carried over continue-as-new. */
  state?: ProtectionState;
}

export interface ProtectionState {
  /** ISO time of the newest base backup this workflow took. */
  lastBaseAt?: string;
  lastBaseId?: string;
  /** What the retention after the newest base removed (bases past pointInTime.windowDays, WAL before the oldest kept base). */
  pruned?: { basesRemoved: number; walObjectsRemoved: number };
  /** The newest high-water mark of the WAL stream. */
  mark?: { lsn: string; time: string };
  /** The newest recordings checkpoint this workflow committed, and the moment it covers (the bucket's clock). */
  recordingsCheckpoint?: { id: string; coveredAt: string };
  /** The newest connector export this workflow stored (only when the inventory changed). */
  connectorExport?: { id: string; exportedAt: string };
  /** The last checkpoint that failed, and why: the WAL stream goes on, and the recordings' recovery point ages (its alert says so). */
  checkpointProblem?: { at: string; message: string };
  slices: number;
  stopping?: boolean;
}
