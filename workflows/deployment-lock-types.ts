// Shapes of the per-deployment lock shared by its workflow, the activities that call it and the operations that read
// it (types and names only: safe in the workflow sandbox).

/** What may hold a deployment's lock: these exclude one another. */
/** `check`: a check that repairs (it writes into the repository); a check that only reads pins what it reads instead. */
export type LockOperation = 'backup' | 'restore' | 'rotate-key' | 'check';

export interface LockHolder {
  workflowId: string;
  runId: string;
  operation: LockOperation;
  /** Workflow time at which it was granted. */
  since: string;
}

export interface AcquireRequest {
  workflowId: string;
  runId: string;
  operation: LockOperation;
  /**
   * `acquire`: take the lock if it is free (or its holder has ended). `confirm`: only check that this holder already
   * has it (a restore's safety snapshot runs under its restore's lock, never takes one of its own).
   */
  mode: 'acquire' | 'confirm';
}

export interface AcquireAnswer {
  acquired: boolean;
  /** The holder after the request: the caller when acquired, else whoever holds it (none: free). */
  holder?: LockHolder;
}

export interface ReleaseRequest {
  workflowId: string;
  runId: string;
}

/** The lock workflow's id: one per deployment. */
export function lockWorkflowId(deployment: string): string {
  return `lock-${deployment}`;
}

export const ACQUIRE_UPDATE = 'acquire';
export const RELEASE_SIGNAL = 'release';
export const HOLDER_QUERY = 'holder';
/** The memo field where the lock publishes its holder, readable by describe() without a worker. */
export const HOLDER_MEMO = 'holder';

/** The failure type of an operation refused because another holds its deployment's lock. */
export const DEPLOYMENT_LOCKED = 'DeploymentLocked';

export function lockedMessage(deployment: string, holder: LockHolder | undefined): string {
  return holder
    ? `${holder.operation} ${holder.workflowId} holds the lock of deployment ${deployment} (since ${holder.since}); wait for it to end, or cancel it`
    : `the lock of deployment ${deployment} is not held by the workflow this runs under`;
}
