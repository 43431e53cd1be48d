// The statements a requester and an approver sign, and their envelope: the shapes workflows, activities and callers share.
import { z } from 'zod';

const scopeSchema = z.union([z.object({ kind: z.literal('full') }).strict(), z.object({ kind: z.literal('resource'), resourceId: z.string().min(1) }).strict()]);

/** "Restore this, as me": bound to the workflow id, the target and what would be restored. */
export const restoreRequestStatementSchema = z
  .object({
    kind: z.literal('restore-request'),
    workflowId: z.string().min(1),
    deployment: z.string().min(1),
    target: z.enum(['production', 'staging']),
    scope: scopeSchema,
    backupId: z.string().min(1).optional(),
    at: z.string().min(1).optional(),
    principal: z.string().min(1),
    issuedAt: z.string().min(1),
  })
  .strict();

/** "I read this loss report and approve restoring this backup": bound to one run of one restore. */
export const restoreApprovalStatementSchema = z
  .object({
    kind: z.literal('restore-approval'),
    workflowId: z.string().min(1),
    restoreId: z.string().min(1),
    backupId: z.string().min(1),
    lossReportDigest: z.string().min(1),
    principal: z.string().min(1),
    issuedAt: z.string().min(1),
    /** An approval that stands for every required one: allowed only when restore.breakGlass.enabled. */
    breakGlass: z.object({ reason: z.string() }).strict().optional(),
  })
  .strict();

export const signedStatementSchema = z
  .object({
    statement: z.discriminatedUnion('kind', [restoreRequestStatementSchema, restoreApprovalStatementSchema]),
    /** Which of approvals.publicKeys verifies it. */
    keyId: z.string().min(1),
    /** Ed25519 signature of the statement's canonical JSON, base64. */
    signature: z.string().min(1),
  })
  .strict();

export type RestoreRequestStatement = z.infer<typeof restoreRequestStatementSchema>;
export type RestoreApprovalStatement = z.infer<typeof restoreApprovalStatementSchema>;
export type Statement = RestoreRequestStatement | RestoreApprovalStatement;
export type SignedStatement = z.infer<typeof signedStatementSchema>;

