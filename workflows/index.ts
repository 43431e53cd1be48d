// The workflows the worker registers (re-exports only).
export { preflightWorkflow } from './preflight';
export { backupWorkflow } from './backup';
export { verifyWorkflow } from './verify';
export { scheduledBackupWorkflow } from './scheduled-backup';
export { restoreWorkflow } from './restore';
export { restoreDrillWorkflow } from './restore-drill';
export { deploymentLockWorkflow } from './deployment-lock';
export { rotateKeyWorkflow } from './rotate-key';
export { checkWorkflow } from './check';
export { scheduledCheckWorkflow } from './scheduled-check';
export { auditLogWorkflow } from './audit-log';
export { protectWorkflow } from './protect';
export { discardScratchInstanceWorkflow, recoverToMomentWorkflow } from './recover-to-moment';
export { momentBackupWorkflow } from './moment-backup';
