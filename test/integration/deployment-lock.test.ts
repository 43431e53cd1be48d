// The deployment lock on the real stack: backup, restore and key rotation of one deployment exclude one another.
// A backup asked for while a restore awaits confirmation is refused naming the restore (CLI/API: 409; the workflow
// itself too, when started past that check); a scheduled backup skips and records why; a rotation is refused while a
// backup runs; the lock is free again after its holder fails, and a terminated holder cannot keep it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app';
import { backupResult, backupWorkflowId, startBackup } from '../../src/operations/backup';
import { deploymentLockHolder } from '../../src/operations/deployment-lock';
import { restoreReport, restoreWorkflowId, startRestore } from '../../src/operations/restore';
import { TEST_REQUESTER, startApprovedRestore } from '../support/approved-restore';
import { runKeyRotation } from '../../src/operations/rotate-keys';
import type { BackupProgress } from '../../workflows/backup-types';
import type { ScheduledBackupResult } from '../../workflows/scheduled-backup';
import { isolatedConfig } from '../support/backup-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { apiCaller, authenticatorFor } from '../support/api-callers';
import { until } from '../support/until';

const operator = apiCaller('lock-operator', ['viewer', 'operator']);

describe('deployment lock', () => {
  const config = isolatedConfig();
  const deployment = config.deployment.name;
  const restoreId = restoreWorkflowId(deployment);
  let h: TemporalHarness;
  let backupId: string;

  beforeAll(async () => {
    h = await temporalHarness(config);
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue })))).backupId;
  }, 180_000);
  afterAll(async () => h?.close());

  const awaitingRestore = async () => {
    const handle = await startRestore(h.client, config, { backupId, taskQueue: h.taskQueue, principal: TEST_REQUESTER });
    await until(async () => ((await restoreReport(h.client, handle.workflowId)).status === 'awaiting-confirmation' ? true : undefined), 'the restore to wait for confirmation');
    return handle;
  };

  it('refuses a backup, a scheduled backup and a rotation while a restore awaits confirmation, naming the restore', async () => {
    await h.withWorker(async () => {
      const restore = await awaitingRestore();
      expect((await deploymentLockHolder(h.client, deployment))?.workflowId).toBe(restoreId);

      await expect(startBackup(h.client, config, { taskQueue: h.taskQueue })).rejects.toThrow(new RegExp(`VPB_ERR_DEPLOYMENT_LOCKED.*restore ${restoreId} holds the lock`));
      const app = buildApi({ config, client: h.client, authenticator: authenticatorFor(operator), taskQueue: h.taskQueue });
      const res = await app.inject({ method: 'POST', url: '/v1/backups', payload: {}, headers: operator.headers });
      await app.close();
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('VPB_ERR_DEPLOYMENT_LOCKED');
      expect(res.json().error.message).toContain(restoreId);

      // Past the callers' check, the backup workflow itself is refused by the lock before it does anything.
      const direct = await h.client.workflow.start('backupWorkflow', { taskQueue: h.taskQueue, workflowId: backupWorkflowId(deployment), args: [{ deployment }] });
      const failure = await direct.result().then(() => undefined, (err: Error) => err);
      expect((failure?.cause as Error | undefined)?.message).toMatch(new RegExp(`restore ${restoreId} holds the lock of deployment ${deployment}`));
      expect((await direct.describe()).searchAttributes.VaultpamStatus).toEqual(['refused']);

      // What the Schedule starts: skipped, and it says why in its result, status and memo.
      const scheduled = await h.client.workflow.start('scheduledBackupWorkflow', { taskQueue: h.taskQueue, workflowId: `scheduled-backup-${deployment}`, args: [{ deployment }] });
      const result = (await scheduled.result()) as ScheduledBackupResult;
      expect(result).toEqual({ started: false, reason: `skipped: restore ${restoreId} holds the lock` });
      const described = await scheduled.describe();
      expect(described.searchAttributes.VaultpamStatus).toEqual(['skipped']);
      expect(described.memo?.skipped).toBe(`skipped: restore ${restoreId} holds the lock`);

      await expect(runKeyRotation(h.client, config, h.taskQueue)).rejects.toThrow(new RegExp(`VPB_ERR_DEPLOYMENT_LOCKED.*restore ${restoreId}`));

      await restore.cancel();
      await expect(restore.result()).rejects.toThrow();
      await until(async () => ((await deploymentLockHolder(h.client, deployment)) === undefined ? true : undefined), 'the lock to be released');
    });
  });

  it('refuses a key rotation while a backup runs, naming the backup; the backup then completes', async () => {
    await h.withWorker(async () => {
      const backup = await startBackup(h.client, config, { taskQueue: h.taskQueue });
      await until(async () => {
        const progress = await backup.query<BackupProgress>('progress');
        return progress.step !== 'starting' ? true : undefined;
      }, 'the backup to take the lock');
      await expect(runKeyRotation(h.client, config, h.taskQueue)).rejects.toThrow(new RegExp(`VPB_ERR_DEPLOYMENT_LOCKED.*backup ${backupWorkflowId(deployment)} holds the lock`));
      expect((await backupResult(backup)).backupId).toMatch(/^\d{8}T/);
      // Free again: the rotation runs (nothing to rewrap under the same key).
      const rotation = await runKeyRotation(h.client, config, h.taskQueue);
      expect(rotation.rewrappedCount).toBe(0);
      expect(rotation.alreadyCurrent).toBe(2);
    });
  });

  it('is free again after its holder fails, and a terminated holder cannot keep it', async () => {
    await h.withWorker(async () => {
      // A restore refused at preflight (no such backup) after taking the lock: it releases the lock as it fails.
      const refused = await startApprovedRestore(h.client, config, { backupId: '20990101T000000Z-0a0b0c', taskQueue: h.taskQueue });
      await expect(refused.result()).rejects.toThrow();
      expect((await restoreReport(h.client, refused.workflowId)).status).toBe('refused');
      expect(await deploymentLockHolder(h.client, deployment)).toBeUndefined();

      // A restore terminated while it holds the lock runs no finally: the next taker finds it ended and takes over.
      const restore = await awaitingRestore();
      await restore.terminate('test: a holder that dies without releasing');
      const after = await backupResult(await startBackup(h.client, config, { taskQueue: h.taskQueue }));
      expect(after.backupId).toMatch(/^\d{8}T/);
      expect(await deploymentLockHolder(h.client, deployment)).toBeUndefined();
    });
  });
});
