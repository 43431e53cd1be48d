// The protection workflow's input, signal, query and answers (shared by the workflow, the operations and the CLI).
import type { TargetName } from '../src/config/load';

export const STOP_PROTECTION_SIGNAL = 'stopProtection';
export const PROTECTION_MARKS_QUERY = 'marks';

export function protectWorkflowId(deployment: string): string {
  return `protect-${deployment}`;
}

export interface ProtectInput {
  target: TargetName;
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
  /** The newest high-water mark of the WAL stream. */
  mark?: { lsn: string; time: string };
  slices: number;
  stopping?: boolean;
}
