// Every activity, built from the process's dependencies (one factory; tests hand it other dependencies).
import type { Dependencies } from '../src/runtime/dependencies';
import { createApprovalActivities } from './approvals';
import { createAuditActivities } from './audit';
import { createCheckActivities } from './check';
import { createCheckpointConnectorsActivities } from './checkpoint-connectors';
import { createCheckpointRecordingsActivities } from './checkpoint-recordings';
import { createCommitActivities } from './commit';
import { createDeploymentLockActivities } from './deployment-lock';
import { createDumpActivities } from './dump';
import { createDumpMomentActivities } from './dump-moment';
import { createPinActivities } from './pins';
import { createPointInTimeActivities } from './point-in-time';
import { createPreflightActivities } from './preflight';
import { createPruneActivities } from './prune';
import { createPrunePointInTimeActivities } from './prune-point-in-time';
import { createQuiesceActivities } from './quiesce';
import { createRecoverToMomentActivities } from './recover-to-moment';
import { createReplicateActivities } from './replicate';
import { createRestoreActivities } from './restore';
import { createRestoreNotificationActivities } from './restore-notifications';
import { createRotateKeyActivities } from './rotate-key';
import { createStreamWalActivities } from './stream-wal';
import { createSyncActivities } from './sync';
import { createTakeBaseBackupActivities } from './take-base-backup';
import { createTimeoutActivities } from './timeouts';
import { createCatalogActivities, createVerifyActivities } from './verify';

export function createActivities(deps: Dependencies) {
  return {
    ...createTimeoutActivities(deps),
    ...createPreflightActivities(deps),
    ...createCommitActivities(deps),
    ...createQuiesceActivities(deps),
    ...createDumpActivities(deps),
    ...createSyncActivities(deps),
    ...createVerifyActivities(deps),
    ...createCatalogActivities(deps),
    ...createReplicateActivities(deps),
    ...createRestoreActivities(deps),
    ...createApprovalActivities(deps),
    ...createRestoreNotificationActivities(deps),
    ...createPruneActivities(deps),
    ...createPinActivities(deps),
    ...createDeploymentLockActivities(deps),
    ...createRotateKeyActivities(deps),
    ...createCheckActivities(deps),
    ...createAuditActivities(deps),
    ...createCheckpointRecordingsActivities(deps),
    ...createCheckpointConnectorsActivities(deps),
    ...createPointInTimeActivities(deps),
    ...createTakeBaseBackupActivities(deps),
    ...createPrunePointInTimeActivities(deps),
    ...createStreamWalActivities(deps),
    ...createRecoverToMomentActivities(deps),
    ...createDumpMomentActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
