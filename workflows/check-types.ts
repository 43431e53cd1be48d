// The repository check's inputs, per-activity results and report: small, bounded facts that travel in histories.

/** Which referenced blobs a check reads whole: all, or slice `slice` of `of` (by the blob name's leading hex digits). */
export type ReadDataScope = 'all' | { slice: number; of: number };

export interface CheckInput {
  deployment: string;
  /** Absent: presence, size and header key check only. */
  readData?: ReadDataScope;
  /** Copy what is damaged or missing from a location (or the live recordings bucket) where it verifies. */
  repair?: boolean;
  /** Set by the scheduled check: its slice is recorded so the next scheduled run takes the following one. */
  scheduled?: boolean;
  requestedBy?: string;
}

export type CheckProblemKind =
  | 'location-unavailable'
  | 'manifest-missing'
  | 'manifest-unreadable'
  | 'manifest-mac'
  | 'artifact-missing'
  | 'artifact-damaged'
  | 'index-unreadable'
  | 'blob-missing'
  | 'blob-size'
  | 'blob-key'
  | 'blob-damaged'
  | 'blob-content'
  | 'check-failed';

export interface CheckProblem {
  location: string;
  kind: CheckProblemKind;
  detail: string;
  backupId?: string;
  /** The recordings checkpoint (point-in-time protection) the problem belongs to. */
  checkpointId?: string;
  /** The connector export (point-in-time protection) the problem belongs to. */
  exportId?: string;
  /** The recording (its key in the recordings bucket) whose blob is affected. */
  recordingKey?: string;
  blob?: string;
  artifact?: string;
  /** With --repair: what became of it. */
  repair?: { outcome: 'repaired'; from: string } | { outcome: 'refused'; reason: string };
}

/** Problems kept in full per activity and in the report; the counts cover every one. */
export const PROBLEMS_KEPT = 20;

export interface BackupCheckInput {
  deployment: string;
  backupId: string;
  location: string;
  /**
   * The backup before this one: blobs it names for the same recording were checked by its own activity at this
   * location, so each shared blob is checked once per run, not once per backup.
   */
  previousBackupId?: string;
  /** The backup after this one: a blob it names for the same recording under another key is a format 1 conflict. */
  nextBackupId?: string;
  readData?: ReadDataScope;
  repair?: boolean;
}

/** What one check activity counts at a location, whatever it checks. */
export interface CheckCounts {
  artifactsChecked: number;
  blobsChecked: number;
  /** Checked by the check of what this one built on (same blob for the same recording). */
  blobsShared: number;
  blobsRead: number;
  bytesRead: number;
  problemCount: number;
  repairedCount: number;
  refusedCount: number;
  problems: CheckProblem[];
}

export interface BackupCheckResult extends CheckCounts {
  location: string;
  backupId: string;
  /** 'removed': no location holds the manifest any more (retention removed the backup while the check ran). */
  manifest: 'authenticated' | 'unauthenticated' | 'missing' | 'invalid' | 'removed';
}

/** The point-in-time records one check activity covers at a location: recordings checkpoints or connector exports. */
export type PointCheckKind = 'checkpoint' | 'connector-export';

export interface PointsCheckInput {
  deployment: string;
  location: string;
  kind: PointCheckKind;
  /**
   * The backups the same run checks at this location: a checkpoint that built on one of them shares its blobs, which
   * that backup's check covered, so each shared blob is checked once per run.
   */
  backupIds: string[];
  readData?: ReadDataScope;
  repair?: boolean;
}

export interface PointsCheckResult extends CheckCounts {
  location: string;
  kind: PointCheckKind;
  /** Committed ids found (a manifest in some location), less those removed while the check ran. */
  ids: number;
  /** Ids whose copy at this location was checked (it holds the manifest, or the manifest names it). */
  checked: number;
  /** Ids committed elsewhere only (a location down when they were written): nothing here to check. */
  notHeld: number;
  /** Removed by retention while the check ran: not counted. */
  removed: number;
  manifests: { authenticated: number; invalid: number; missing: number };
}

export interface OrphanCheckResult {
  location: string;
  blobsListed: number;
  referenced: number;
  orphanCount: number;
  /** The first orphans by name (blobs no manifest references: left by a failed backup, or a backup running now). */
  orphans: string[];
  missingCount: number;
  missing: string[];
  /** Set when the orphan count could not be established (an index unreadable everywhere, a listing failed). */
  skipped?: string;
}

export interface CheckReport {
  checkId: string;
  deployment: string;
  startedAt: string;
  finishedAt: string;
  readData: 'none' | 'all' | string;
  repair: boolean;
  /** No problem remains (orphans are reported, not counted: prune removes them). */
  ok: boolean;
  backups: number;
  locations: string[];
  manifests: { authenticated: number; unauthenticated: number };
  blobsChecked: number;
  blobsRead: number;
  bytesRead: number;
  problemCount: number;
  repairedCount: number;
  /** Problems still there after this run (found and not repaired). */
  remainingCount: number;
  problems: CheckProblem[];
  /**
   * Per location, from the merge of its blob listing with every index: orphans (no manifest references them) and
   * blobs referenced but not listed, after any repair (the per-backup problems name the recordings of the latter).
   */
  orphans: { location: string; count: number; sample: string[]; missingCount: number; missingSample: string[]; skipped?: string }[];
  /**
   * The point-in-time protection's recordings checkpoints and connector exports, checked like backups (manifest MAC,
   * artifacts read against their checksums, the blobs a checkpoint's index names). Their problems are in `problems`
   * and the counts above. Absent in reports written before they were checked.
   */
  pointInTime?: {
    /** Committed ids checked (in at least one location). */
    checkpoints: number;
    connectorExports: number;
    /** (location, id) pairs checked: each location's copy counts once. */
    copiesChecked: number;
    /** (location, id) pairs where the id never committed at that location. */
    copiesNotHeld: number;
    artifactsChecked: number;
    blobsChecked: number;
    blobsShared: number;
    blobsRead: number;
    bytesRead: number;
  };
  /** Set by a scheduled check: the slice it read. */
  scheduledSlice?: { slice: number; of: number };
}

export type ScheduledCheckResult = { started: true; report: CheckReport } | { started: false; reason: string };

export function describeReadData(scope: ReadDataScope | undefined): string {
  if (!scope) return 'none';
  return scope === 'all' ? 'all' : `${scope.slice}/${scope.of}`;
}
