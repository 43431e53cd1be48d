// Shapes shared by the preflight workflow, its activities and its callers (types only: safe in the workflow sandbox).

export interface CheckResult {
  check: string;
  ok: boolean;
  summary: string;
  /** What to do about a failed check. */
  hint?: string;
  facts: Record<string, string | number | boolean>;
}

export interface PreflightInput {
  target: 'production' | 'staging';
  /** Pass the recovery-point check when no backup exists yet (a new deployment's first run). @default false */
  allowNoBackup?: boolean;
}

export interface PreflightReport {
  deployment: string;
  target: 'production' | 'staging';
  ok: boolean;
  checkedAt: string;
  checks: CheckResult[];
}
