// Four-eyes approval of production restores on the real stack: signed requests and approvals verified by the
// workflow itself; a requester cannot approve, forged or absent signatures stop nothing, pre-confirmed production
// starts are refused, two approvers are needed when two are configured, break-glass proceeds loudly, the webhook
// is signed.
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statementSigner } from '../../src/approvals/approval-keys';
import type { RestoreApprovalStatement, SignedStatement } from '../../src/approvals/signed-statement';
import { signStatement } from '../../src/approvals/statement-signature';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { createActivityMetrics } from '../../src/metrics/activity-metrics';
import { webhookSignature } from '../../src/notifications/webhook';
import { backupResult, startBackup } from '../../src/operations/backup';
import { rootCauseMessage } from '../../src/operations/failure-message';
import { confirmRestore, restoreReport, restoreWorkflowId, startRestore } from '../../src/operations/restore';
import type { ConfirmArgs, RestoreInput, RestoreReport } from '../../workflows/restore-types';
import { DEPLOYMENT, OPERATION } from '../../workflows/search-attributes';
import { SECOND_APPROVER, TEST_APPROVER, TEST_REQUESTER, untilAwaitingOrEnded } from '../support/approved-restore';
import { observedServiceControl, restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const WEBHOOK_SECRET_ENV = 'VAULTPAM_TEST_RESTORE_WEBHOOK_SECRET';

interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('four-eyes approval of production restores', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;
  let webhook: Server;
  let webhookUrl: string;
  const received: Received[] = [];

  /** The fixture's configuration with this test's restore policy and the local webhook. */
  const workerConfig = (restore: { production: number; breakGlass?: boolean }): Config =>
    parseConfig({
      ...f.config,
      restore: { approvals: { production: restore.production, staging: 0 }, breakGlass: { enabled: restore.breakGlass ?? false } },
      notifications: { webhook: { url: webhookUrl, secret: { env: WEBHOOK_SECRET_ENV } } },
    });

  /** An Update sent straight through the Temporal client: what the workflow alone decides. */
  const rawConfirm = (workflowId: string, args: ConfirmArgs) =>
    h.client.workflow
      .getHandle(workflowId)
      .executeUpdate<RestoreReport, [ConfirmArgs]>('confirm', { args: [args] })
      .then(
        () => 'accepted',
        (err: unknown) => rootCauseMessage(err),
      );

  const approvalOf = (waiting: RestoreReport, principal: string, extra: Partial<RestoreApprovalStatement> = {}): RestoreApprovalStatement => ({
    kind: 'restore-approval',
    workflowId: restoreWorkflowId(f.config.deployment.name),
    restoreId: waiting.restoreId,
    backupId: waiting.backup!.backupId,
    lossReportDigest: waiting.lossReportDigest!,
    principal,
    issuedAt: new Date().toISOString(),
    ...extra,
  });

  beforeAll(async () => {
    process.env[WEBHOOK_SECRET_ENV] = 'webhook-test-secret';
    webhook = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hooks/restores`;
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    await f.seed({ resources: 12, auditEntries: 80, recordings: 8, recordingBytes: 4_000 });
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, reason: 'before the approvals tests' })))).backupId;
  }, 240_000);

  afterAll(async () => {
    await h?.close();
    await f?.destroy();
    await new Promise<void>((resolve) => (webhook ? webhook.close(() => resolve()) : resolve()));
    delete process.env[WEBHOOK_SECRET_ENV];
  });

  it('refuses an approval by the requester, a missing one and forged ones: nothing recorded, nothing stopped', async () => {
    const before = await f.fingerprint();
    const service = observedServiceControl(f);
    await h.withWorker(
      async () => {
        const handle = await startRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'self-approval test', principal: TEST_REQUESTER, taskQueue: h.taskQueue });
        const waiting = await untilAwaitingOrEnded(h.client, handle.workflowId);
        expect(waiting.status).toBe('awaiting-confirmation');
        expect(waiting.requestedBy).toBe(TEST_REQUESTER.id);
        expect(waiting.approvalsRequired).toBe(1);
        const answer = { backupId, lossReportDigest: waiting.lossReportDigest! };

        // Through the operations layer, and straight through Temporal with the requester's own signed approval.
        await expect(confirmRestore(h.client, f.config, handle.workflowId, { ...answer, principal: TEST_REQUESTER })).rejects.toThrow(/cannot be approved by the principal who requested it/);
        const signer = statementSigner(f.config.approvals);
        expect(await rawConfirm(handle.workflowId, { ...answer, approval: signer.sign(approvalOf(waiting, TEST_REQUESTER.id)) })).toMatch(/a restore cannot be approved by the principal who requested it \(test:requester\)/);
        // No approval at all, and the old caller-written confirmedBy.
        expect(await rawConfirm(handle.workflowId, { ...answer, confirmedBy: TEST_APPROVER.id })).toMatch(/needs 1 signed approval/);
        // Forged: the approver's statement signed with a key the worker does not hold, under a known id and an unknown one.
        const forger = generateKeyPairSync('ed25519').privateKey;
        expect(await rawConfirm(handle.workflowId, { ...answer, approval: signStatement(approvalOf(waiting, TEST_APPROVER.id), forger, signer.keyId) })).toMatch(/does not verify with key "local-approvals"/);
        expect(await rawConfirm(handle.workflowId, { ...answer, approval: signStatement(approvalOf(waiting, TEST_APPROVER.id), forger, 'attacker') })).toMatch(/signed with key "attacker", which is not in approvals.publicKeys/);
        // A genuine signature over a statement edited afterwards (another principal).
        const genuine = signer.sign(approvalOf(waiting, TEST_APPROVER.id));
        const edited: SignedStatement = { ...genuine, statement: { ...genuine.statement, principal: SECOND_APPROVER.id } };
        expect(await rawConfirm(handle.workflowId, { ...answer, approval: edited })).toMatch(/does not verify/);
        // A genuine approval of another run of this restore.
        expect(await rawConfirm(handle.workflowId, { ...answer, approval: signer.sign(approvalOf(waiting, TEST_APPROVER.id, { restoreId: `${waiting.restoreId}x` })) })).toMatch(/not for this one/);

        const after = await restoreReport(h.client, handle.workflowId);
        expect(after.status).toBe('awaiting-confirmation');
        expect(after.approvals ?? []).toEqual([]);
        expect(after.confirmedBy).toBeUndefined();
        expect((await f.deps.controlPlane('production').health()).status).toBe('ok');
        expect(service.calls).toEqual([]);
        await handle.terminate('test: end the refused restore');
      },
      service.overrides,
    );
    expect(await f.fingerprint()).toEqual(before);
  });

  it('with production: 2, one approval does not start the restore and a second distinct principal does', async () => {
    const config = workerConfig({ production: 2 });
    const service = observedServiceControl(f);
    const report = await h.withWorker(
      async () => {
        const handle = await startRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'two approvers', principal: TEST_REQUESTER, taskQueue: h.taskQueue });
        const waiting = await untilAwaitingOrEnded(h.client, handle.workflowId);
        expect(waiting.approvalsRequired).toBe(2);
        const answer = { backupId, lossReportDigest: waiting.lossReportDigest! };

        const first = await confirmRestore(h.client, f.config, handle.workflowId, { ...answer, principal: TEST_APPROVER });
        expect(first.status).toBe('awaiting-confirmation');
        expect(first.approvals!.map((a) => a.principal)).toEqual([TEST_APPROVER.id]);
        await new Promise((r) => setTimeout(r, 1500));
        expect((await restoreReport(h.client, handle.workflowId)).status).toBe('awaiting-confirmation');
        expect(service.calls).toEqual([]);
        await expect(confirmRestore(h.client, f.config, handle.workflowId, { ...answer, principal: TEST_APPROVER })).rejects.toThrow(/test:approver has already approved this restore/);

        await confirmRestore(h.client, f.config, handle.workflowId, { ...answer, principal: SECOND_APPROVER });
        return (await handle.result()) as RestoreReport;
      },
      service.overrides,
      config,
    );
    expect(report.status).toBe('completed');
    expect(report.requestedBy).toBe(TEST_REQUESTER.id);
    expect(report.approvalsRequired).toBe(2);
    expect(report.approvals!.map((a) => a.principal)).toEqual([TEST_APPROVER.id, SECOND_APPROVER.id]);
    expect(report.approvals!.every((a) => !Number.isNaN(Date.parse(a.at)))).toBe(true);
    expect(report.confirmedBy).toBe(`${TEST_APPROVER.id}, ${SECOND_APPROVER.id}`);
    expect(report.breakGlass).toBeUndefined();
    expect(service.calls).toEqual(['stop production', 'start production']);
  });

  it('refuses, before any change, a pre-confirmed production start and starts without a valid signed request', async () => {
    const before = await f.fingerprint();
    const service = observedServiceControl(f);
    const deployment = f.config.deployment.name;
    const workflowId = restoreWorkflowId(deployment);
    const startRaw = (input: RestoreInput) =>
      h.client.workflow.start('restoreWorkflow', {
        taskQueue: h.taskQueue,
        workflowId,
        args: [input],
        typedSearchAttributes: [
          { key: DEPLOYMENT, value: deployment },
          { key: OPERATION, value: 'restore' },
        ],
      });
    const refusal = async (handle: WorkflowHandle) => {
      await expect(handle.result()).rejects.toThrow();
      return restoreReport(h.client, workflowId);
    };
    const base: RestoreInput = { deployment, target: 'production', targetDeployment: deployment, backupId, scope: { kind: 'full' }, safetySnapshot: false };
    const signedRequest = (extra: { backupId?: string } = {}) =>
      statementSigner(f.config.approvals).sign({ kind: 'restore-request', workflowId, deployment, target: 'production', scope: { kind: 'full' }, backupId, ...extra, principal: TEST_REQUESTER.id, issuedAt: new Date().toISOString() });

    await h.withWorker(
      async () => {
        // Pre-confirmed, even with a genuine signed request.
        const preConfirmed = await refusal(await startRaw({ ...base, confirmed: true, request: signedRequest() }));
        expect(preConfirmed.status).toBe('refused');
        expect(preConfirmed.step).toBe('authorize');
        expect(preConfirmed.error).toMatch(/pre-confirmed restores are only for staging drills/);

        const unsigned = await refusal(await startRaw({ ...base, requestedBy: 'someone' }));
        expect(unsigned.status).toBe('refused');
        expect(unsigned.error).toMatch(/needs a signed request/);
        expect(unsigned.requestedBy).toBeUndefined();

        // A genuine request for another backup does not start this one.
        const mismatched = await refusal(await startRaw({ ...base, request: signedRequest({ backupId: '20200101T000000Z-abcdef' }) }));
        expect(mismatched.status).toBe('refused');
        expect(mismatched.error).toMatch(/does not describe this restore \(it differs in backupId\)/);
      },
      service.overrides,
    );
    expect(service.calls).toEqual([]);
    expect(await f.fingerprint()).toEqual(before);
  });

  it('lets one break-glass approval stand for two, and says so: report, metric, webhook', async () => {
    const config = workerConfig({ production: 2, breakGlass: true });
    const metrics = createActivityMetrics();
    received.length = 0;
    const report = await h.withWorker(
      async () => {
        const handle = await startRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'break-glass', principal: TEST_REQUESTER, taskQueue: h.taskQueue });
        const waiting = await untilAwaitingOrEnded(h.client, handle.workflowId);
        const answer = { backupId, lossReportDigest: waiting.lossReportDigest! };
        await expect(confirmRestore(h.client, f.config, handle.workflowId, { ...answer, principal: TEST_APPROVER, breakGlass: { reason: 'urgent' } })).rejects.toThrow(/at least 10 characters/);
        await expect(confirmRestore(h.client, f.config, handle.workflowId, { ...answer, principal: TEST_REQUESTER, breakGlass: { reason: 'production database lost' } })).rejects.toThrow(/principal who requested it/);
        await confirmRestore(h.client, f.config, handle.workflowId, { ...answer, principal: TEST_APPROVER, breakGlass: { reason: 'production database lost' } });
        return (await handle.result()) as RestoreReport;
      },
      {},
      config,
      metrics,
    );
    expect(report.status).toBe('completed');
    expect(report.breakGlass).toEqual({ principal: TEST_APPROVER.id, reason: 'production database lost' });
    expect(report.approvals).toEqual([{ principal: TEST_APPROVER.id, at: expect.any(String), breakGlass: { reason: 'production database lost' } }]);
    expect(report.confirmedBy).toBe(TEST_APPROVER.id);
    const counter = (await metrics.registry.getSingleMetric('vaultpam_restore_break_glass_total')!.get()).values;
    expect(counter.reduce((sum, v) => sum + v.value, 0)).toBe(1);
    const events = received.map((r) => JSON.parse(r.body) as { event: string; approvedBy?: string; reason?: string });
    expect(events.map((e) => e.event)).toEqual(['restore.awaiting-approval', 'restore.break-glass']);
    expect(events[1]).toMatchObject({ approvedBy: TEST_APPROVER.id, reason: 'production database lost', requestedBy: TEST_REQUESTER.id });
    expect(report.notifications).toEqual([
      { event: 'restore.awaiting-approval', delivered: true, attempts: 1 },
      { event: 'restore.break-glass', delivered: true, attempts: 1 },
    ]);
  });

  it('announces a restore awaiting approval on the webhook, signed with the shared secret', async () => {
    received.length = 0;
    await h.withWorker(
      async () => {
        const handle = await startRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'webhook', principal: TEST_REQUESTER, taskQueue: h.taskQueue });
        const waiting = await untilAwaitingOrEnded(h.client, handle.workflowId);
        const deadline = Date.now() + 30_000;
        while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        expect(received).toHaveLength(1);
        const { headers, body } = received[0]!;
        expect(headers['content-type']).toBe('application/json');
        expect(headers['x-vaultpam-signature']).toBe(webhookSignature(body, 'webhook-test-secret'));
        expect(headers['x-vaultpam-signature']).not.toBe(webhookSignature(body, 'another secret'));
        expect(JSON.parse(body)).toEqual({
          event: 'restore.awaiting-approval',
          workflowId: handle.workflowId,
          deployment: f.config.deployment.name,
          target: 'production',
          backupId,
          requestedBy: TEST_REQUESTER.id,
          approvalsRequired: 1,
          lossReportDigest: waiting.lossReportDigest,
          confirm: `vaultpam-backup restore confirm ${handle.workflowId} --backup ${backupId}`,
        });
        expect((await restoreReport(h.client, handle.workflowId)).notifications).toEqual([{ event: 'restore.awaiting-approval', delivered: true, attempts: 1 }]);
        await handle.terminate('test: the announcement was all this test needed');
      },
      {},
      workerConfig({ production: 1 }),
    );
  });

  it('reports a webhook that cannot be reached, and still awaits approval', async () => {
    const unreachable = parseConfig({ ...f.config, notifications: { webhook: { url: 'http://127.0.0.1:9/unreachable' } } });
    await h.withWorker(
      async () => {
        const handle = await startRestore(h.client, f.config, { backupId, safetySnapshot: false, reason: 'webhook down', principal: TEST_REQUESTER, taskQueue: h.taskQueue });
        const waiting = await untilAwaitingOrEnded(h.client, handle.workflowId);
        expect(waiting.status).toBe('awaiting-confirmation');
        const deadline = Date.now() + 60_000;
        let report = waiting;
        while (!report.notifications && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 250));
          report = await restoreReport(h.client, handle.workflowId);
        }
        expect(report.status).toBe('awaiting-confirmation');
        expect(report.notifications).toEqual([{ event: 'restore.awaiting-approval', delivered: false, attempts: 3, error: expect.any(String) }]);
        await handle.terminate('test: done');
      },
      {},
      unreachable,
    );
  });
});
