// The four-eyes rules, pure (the workflow's validator and the worker's re-verification apply the same ones).

/** The least a break-glass reason says, in characters. */
export const BREAK_GLASS_MIN_REASON = 10;

/** What a target's restores need: from the worker's restore.approvals and restore.breakGlass. */
export interface RestorePolicy {
  approvalsRequired: number;
  breakGlassEnabled: boolean;
}

export interface ApprovalFacts {
  principal: string;
  breakGlass?: { reason: string };
}

/**
 * Why an approval may not count, or undefined when it may: the requester's own approval, a second one by the same
 * principal, a break-glass without reason or while disabled.
 */
export function approvalRejection(approval: ApprovalFacts, requester: string | undefined, earlier: readonly { principal: string }[], policy: RestorePolicy): string | undefined {
  if (requester !== undefined && approval.principal === requester) return `a restore cannot be approved by the principal who requested it (${requester}): another approver must confirm it`;
  if (earlier.some((a) => a.principal === approval.principal)) return `${approval.principal} has already approved this restore: the next approval must come from another principal`;
  if (approval.breakGlass) {
    if (!policy.breakGlassEnabled) return 'break-glass approvals are disabled on this worker (restore.breakGlass.enabled is false): collect the required approvals instead';
    if (approval.breakGlass.reason.trim().length < BREAK_GLASS_MIN_REASON) return `a break-glass approval must give its reason in at least ${BREAK_GLASS_MIN_REASON} characters`;
  }
  return undefined;
}

/** Whether these approvals (already checked one by one) let the restore proceed: enough distinct ones, or one break-glass. */
export function approvalsSuffice(approvals: readonly ApprovalFacts[], policy: RestorePolicy): boolean {
  if (policy.approvalsRequired === 0) return true;
  if (policy.breakGlassEnabled && approvals.some((a) => a.breakGlass)) return true;
  return new Set(approvals.map((a) => a.principal)).size >= policy.approvalsRequired;
}
