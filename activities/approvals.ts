// Signed restore requests and approvals, verified inside the worker with its public keys; and the worker's restore policy.
import type { KeyObject } from 'node:crypto';
import { approvalRejection, approvalsSuffice, type RestorePolicy } from '../src/approvals/approval-rules';
import { loadPublicKeys } from '../src/approvals/approval-keys';
import type { RestoreApprovalStatement, RestoreRequestStatement, SignedStatement } from '../src/approvals/signed-statement';
import { verifySignedStatement } from '../src/approvals/statement-signature';
import { canonicalJson } from '../src/catalog/manifest-mac';
import type { TargetName } from '../src/config/load';
import type { Dependencies } from '../src/runtime/dependencies';
import type { RestoreScope } from '../workflows/restore-types';
import { restoreFailure } from './restore-failure';

/** How far a request's issuedAt may lie from the workflow's start: a signed request cannot start another restore later. */
const REQUEST_FRESHNESS_MS = 15 * 60_000;

export interface ExpectedRequest {
  workflowId: string;
  deployment: string;
  target: TargetName;
  scope: RestoreScope;
  backupId?: string;
  at?: string;
  /** The workflow's start (ISO). */
  startedAt: string;
}

export interface ExpectedApproval {
  workflowId: string;
  restoreId: string;
  backupId: string;
  lossReportDigest: string;
}

export interface VerifiedApproval {
  principal: string;
  at: string;
  breakGlass?: { reason: string };
}

export function createApprovalActivities(deps: Dependencies) {
  let keys: Map<string, KeyObject> | undefined;

  function policyOf(target: TargetName): RestorePolicy {
    return { approvalsRequired: deps.config.restore.approvals[target], breakGlassEnabled: deps.config.restore.breakGlass.enabled };
  }

  function verified(signed: unknown, failureType: string, what: string) {
    try {
      keys ??= loadPublicKeys(deps.config.approvals);
      if (keys.size === 0) throw new Error('approvals.publicKeys is empty on this worker: add the public key of the API\'s approvals.signingKey');
      return verifySignedStatement(signed, keys);
    } catch (err) {
      throw restoreFailure(failureType, `${what} does not verify: ${(err as Error).message}`);
    }
  }

  function checkRequest(signed: SignedStatement, expected: ExpectedRequest): RestoreRequestStatement {
    const statement = verified(signed, 'RestoreRequestInvalid', 'the restore request');
    if (statement.kind !== 'restore-request') throw restoreFailure('RestoreRequestInvalid', `the restore request is a signed ${statement.kind}, not a restore-request`);
    const mismatches = (['workflowId', 'deployment', 'target', 'backupId', 'at'] as const).filter((field) => statement[field] !== expected[field]);
    if (canonicalJson(statement.scope) !== canonicalJson(expected.scope)) mismatches.push('scope' as never);
    if (mismatches.length) throw restoreFailure('RestoreRequestInvalid', `the signed restore request does not describe this restore (it differs in ${mismatches.join(', ')}): sign a request for exactly what is started`);
    const age = Date.parse(expected.startedAt) - Date.parse(statement.issuedAt);
    if (!(Math.abs(age) <= REQUEST_FRESHNESS_MS)) throw restoreFailure('RestoreRequestInvalid', `the signed restore request was issued at ${statement.issuedAt}, not within 15 minutes of this restore's start (${expected.startedAt}): a request starts one restore only`);
    return statement;
  }

  function checkApproval(signed: SignedStatement, expected: ExpectedApproval): RestoreApprovalStatement {
    const statement = verified(signed, 'ApprovalInvalid', 'the approval');
    if (statement.kind !== 'restore-approval') throw restoreFailure('ApprovalInvalid', `the approval is a signed ${statement.kind}, not a restore-approval`);
    const mismatches = (['workflowId', 'restoreId', 'backupId', 'lossReportDigest'] as const).filter((field) => statement[field] !== expected[field]);
    if (mismatches.length) throw restoreFailure('ApprovalInvalid', `the approval by ${statement.principal} is for another restore (it differs in ${mismatches.join(', ')})`);
    return statement;
  }

  const facts = (s: RestoreApprovalStatement): VerifiedApproval => ({ principal: s.principal, at: s.issuedAt, ...(s.breakGlass ? { breakGlass: s.breakGlass } : {}) });

  return {
    /** How many approvals a restore into this target needs, and whether break-glass is allowed: this worker's configuration. */
    async restorePolicy(input: { target: TargetName }): Promise<RestorePolicy> {
      return policyOf(input.target);
    },

    /** The requester, from the signed request only: its signature, and that it describes this very restore. */
    async verifyRestoreRequest(input: { request: SignedStatement; expected: ExpectedRequest }): Promise<{ principal: string }> {
      return { principal: checkRequest(input.request, input.expected).principal };
    },

    /** One approval: its signature and that it approves this run, this backup and this loss report. */
    async verifyApproval(input: { approval: SignedStatement; expected: ExpectedApproval }): Promise<VerifiedApproval> {
      return facts(checkApproval(input.approval, input.expected));
    },

    /**
     * Every signature again, right before anything is stopped: the request, each approval, distinct principals none
     * of them the requester, and enough of them under this worker's policy now.
     */
    async verifyApprovals(input: { target: TargetName; request?: SignedStatement; requestExpected: ExpectedRequest; approvals: SignedStatement[]; expected: ExpectedApproval }): Promise<{ requestedBy?: string; approvedBy: string[] }> {
      const policy = policyOf(input.target);
      const requester = input.request ? checkRequest(input.request, input.requestExpected).principal : undefined;
      if (policy.approvalsRequired > 0 && requester === undefined) throw restoreFailure('RestoreNotApproved', `restores into ${input.target} need a signed request; this one has none`);
      const counted: VerifiedApproval[] = [];
      for (const signed of input.approvals) {
        const approval = facts(checkApproval(signed, input.expected));
        const rejection = approvalRejection(approval, requester, counted, policy);
        if (rejection) throw restoreFailure('RestoreNotApproved', rejection);
        counted.push(approval);
      }
      if (!approvalsSuffice(counted, policy)) {
        throw restoreFailure('RestoreNotApproved', `restores into ${input.target} need ${policy.approvalsRequired} approval(s) from distinct principals other than the requester; ${counted.length} verified (${counted.map((a) => a.principal).join(', ') || 'none'})`);
      }
      return { ...(requester !== undefined ? { requestedBy: requester } : {}), approvedBy: counted.map((a) => a.principal) };
    },
  };
}
