// The state-changing commands sent through the HTTP API (api.url or --api), printing what the direct commands print.
import type { BackupResult } from '../../workflows/backup-types';
import type { CheckReport } from '../../workflows/check-types';
import type { RestoreReport } from '../../workflows/restore-types';
import type { VerifyReport } from '../../workflows/verify';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import type { LiveProgress } from '../operations/progress';
import type { RotationResult } from '../operations/rotate-keys';
import { callApi, type ApiTarget } from './api-client';
import { formatBackupResult, formatCheckReport, formatRestoreReport, formatVerify, printJson } from './output';
import { workflowUrl } from './workflow-url';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the API says of the workers polling its task queue (GET /v1/workers). */
interface WorkerPresence {
  taskQueue: string;
  namespace: string;
  polling: boolean;
}

/** Between two looks at whether a worker still polls: a long poll lasts up to a minute, so more often says nothing new. */
const WORKER_CHECK_MS = 15_000;

/**
 * Polls until `done` says the answer is final. The API answers each poll, so a dead worker shows as no progress, not
 * a hang; and every WORKER_CHECK_MS the API is asked whether a worker still polls, so a wait with none ends at once
 * with VPB_ERR_NO_WORKER naming the task queue (the workflow stays, and goes on once a worker runs).
 */
async function pollUntil<T>(target: ApiTarget, workflowId: string, read: () => Promise<T>, done: (value: T) => boolean, onEach: (value: T) => void = () => undefined): Promise<T> {
  let nextWorkerCheck = 0;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    onEach(value);
    if (Date.now() >= nextWorkerCheck) {
      const { body: workers } = await callApi<WorkerPresence>(target, 'GET', '/v1/workers');
      if (!workers.polling) {
        throw new VaultpamBackupError(
          'VPB_ERR_NO_WORKER',
          workers.taskQueue,
          workers.namespace,
          `workflow ${workflowId} waits for one (it goes on once a worker runs). Start one with the API's configuration (temporal.address, temporal.namespace, temporal.taskQueue): vaultpam-backup worker`,
        );
      }
      nextWorkerCheck = Date.now() + WORKER_CHECK_MS;
    }
    await sleep(1000);
  }
}

const restoreReportOf = (target: ApiTarget, workflowId: string) => async () => (await callApi<RestoreReport>(target, 'GET', `/v1/restores/${encodeURIComponent(workflowId)}`)).body;
const finished = (r: RestoreReport) => r.status !== 'running' && r.status !== 'awaiting-confirmation';

export async function backupViaApi(target: ApiTarget, cfg: Config, opts: { wait?: boolean; deep?: boolean; reason?: string; json?: boolean }): Promise<void> {
  const { formatProgress } = await import('../operations/progress');
  const { body: ids } = await callApi<{ workflowId: string; runId: string }>(target, 'POST', '/v1/backups', { reason: opts.reason ?? 'on demand', deep: opts.deep ?? false });
  if (!opts.wait) {
    if (opts.json) printJson({ workflowId: ids.workflowId, runId: ids.runId });
    else process.stdout.write(`backup started: workflow ${ids.workflowId}\n  follow it: vaultpam-backup backup status   or ${workflowUrl(cfg, ids.workflowId)}\n`);
    return;
  }
  const tty = process.stderr.isTTY && !opts.json;
  let lastPrinted = 0;
  const final = await pollUntil(
    target,
    ids.workflowId,
    async () => (await callApi<LiveProgress & { result?: BackupResult; error?: string }>(target, 'GET', '/v1/backups/status')).body,
    (p) => p.workflowStatus !== 'RUNNING',
    (p) => {
      if (opts.json) return;
      if (tty) process.stderr.write(`\r\x1b[2K${formatProgress(p)}`);
      else if (Date.now() - lastPrinted > 10_000) {
        process.stderr.write(`${formatProgress(p)}\n`);
        lastPrinted = Date.now();
      }
    },
  );
  if (tty) process.stderr.write('\r\x1b[2K');
  if (!final.result) throw new VaultpamBackupError('VPB_ERR_STEP_FAILED', final.step, `backup ${ids.workflowId} ended ${final.workflowStatus}${final.error ? `: ${final.error}` : ''}`);
  if (opts.json) printJson({ ...ids, ...final.result });
  else process.stdout.write(`${formatBackupResult(final.result)}\n  workflow: ${workflowUrl(cfg, ids.workflowId)}\n`);
}

export interface RestoreOptions {
  backup?: string;
  at?: string;
  scope: string;
  target: string;
  reason?: string;
  yes?: boolean;
  acceptUnrecoverable?: string;
  wait?: boolean;
  json?: boolean;
}

export async function restoreViaApi(target: ApiTarget, cfg: Config, opts: RestoreOptions): Promise<void> {
  const { parseUnrecoverableAcceptance } = await import('../operations/restore');
  const acceptUnrecoverable = opts.acceptUnrecoverable !== undefined ? parseUnrecoverableAcceptance(opts.acceptUnrecoverable) : undefined;
  const { body: started } = await callApi<{ workflowId: string }>(target, 'POST', '/v1/restores', {
    ...(opts.backup ? { backupId: opts.backup } : {}),
    ...(opts.at ? { at: opts.at } : {}),
    scope: opts.scope,
    target: opts.target,
    reason: opts.reason ?? 'on demand',
    confirmed: opts.yes ?? false,
    ...(acceptUnrecoverable !== undefined ? { acceptUnrecoverable } : {}),
  });
  const id = started.workflowId;
  const read = restoreReportOf(target, id);
  if (!opts.yes) {
    // Show what the restore brings back and what it loses, then say exactly how to confirm.
    const report = await pollUntil(target, id, read, (r) => Boolean(r.lossReportDigest) || r.status !== 'running');
    const confirmCommand = `vaultpam-backup restore confirm ${id} --backup ${report.backup?.backupId ?? '<id>'}`;
    if (opts.json) printJson({ workflowId: id, backupId: report.backup?.backupId, confirmCommand, ...report });
    else process.stdout.write(`${formatRestoreReport(report)}\n\nTo go ahead: ${confirmCommand}\n`);
    return;
  }
  if (!opts.wait) {
    if (opts.json) printJson({ workflowId: id });
    else process.stdout.write(`restore started: workflow ${id}\n  follow it: vaultpam-backup restore report ${id}   or ${workflowUrl(cfg, id)}\n`);
    return;
  }
  const report = await pollUntil(target, id, read, finished);
  if (opts.json) printJson({ workflowId: id, backupId: report.backup?.backupId, ...report });
  else process.stdout.write(`${formatRestoreReport(report)}\n  workflow: ${workflowUrl(cfg, id)}\n`);
  process.exitCode = report.status === 'completed' ? 0 : 1;
}

export async function confirmViaApi(target: ApiTarget, workflowId: string, opts: { backup: string; acceptUnrecoverable?: string; breakGlass?: string; wait?: boolean; json?: boolean }): Promise<void> {
  const { parseUnrecoverableAcceptance } = await import('../operations/restore');
  const read = restoreReportOf(target, workflowId);
  const current = await read();
  if (!current.lossReportDigest) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `restore ${workflowId} has no loss report yet (status ${current.status}); wait a moment and try again`);
  const acceptUnrecoverable = parseUnrecoverableAcceptance(opts.acceptUnrecoverable);
  if (!opts.json) process.stdout.write(`${formatRestoreReport(current)}\n\n`);
  const { body: confirmation } = await callApi<RestoreReport>(target, 'POST', `/v1/restores/${encodeURIComponent(workflowId)}/confirm`, {
    backupId: opts.backup,
    lossReportDigest: current.lossReportDigest,
    ...(opts.breakGlass !== undefined ? { breakGlass: { reason: opts.breakGlass } } : {}),
    ...(acceptUnrecoverable !== undefined ? { acceptUnrecoverable } : {}),
  });
  if (!opts.json) {
    const approvedBy = (confirmation.approvals ?? []).map((a) => a.principal).join(', ') || 'no one';
    process.stdout.write(
      confirmation.status === 'awaiting-confirmation'
        ? `approved by ${approvedBy}; ${(confirmation.approvalsRequired ?? 0) - (confirmation.approvals?.length ?? 0)} more approval(s) from other principals are needed before the restore of ${opts.backup} goes ahead\n`
        : `confirmed${confirmation.breakGlass ? ' by BREAK-GLASS' : ''} (approved by ${approvedBy}); the restore of ${opts.backup} goes ahead\n`,
    );
  }
  if (opts.wait) {
    const report = await pollUntil(target, workflowId, read, finished);
    if (opts.json) printJson({ workflowId, backupId: opts.backup, ...report });
    else process.stdout.write(`${formatRestoreReport(report)}\n`);
    process.exitCode = report.status === 'completed' ? 0 : 1;
  } else if (opts.json) {
    printJson({ workflowId, backupId: opts.backup, ...confirmation });
  }
}

export async function verifyViaApi(target: ApiTarget, backupId: string, opts: { deep?: boolean; json?: boolean }): Promise<void> {
  const { body: report } = await callApi<VerifyReport>(target, 'POST', `/v1/backups/${encodeURIComponent(backupId)}/verify`, { deep: opts.deep ?? false }, [422]);
  if (opts.json) printJson(report);
  else process.stdout.write(`${formatVerify(report)}\n`);
  process.exitCode = report.ok ? 0 : 1;
}

export async function checkViaApi(target: ApiTarget, cfg: Config, opts: { readData?: boolean; readDataSubset?: string; repair?: boolean; wait?: boolean; json?: boolean }): Promise<void> {
  const { body: started } = await callApi<{ workflowId: string; runId: string }>(target, 'POST', '/v1/checks', {
    ...(opts.readData ? { readData: true } : {}),
    ...(opts.readDataSubset ? { readDataSubset: opts.readDataSubset } : {}),
    repair: opts.repair ?? false,
  });
  if (!opts.wait) {
    if (opts.json) printJson({ workflowId: started.workflowId, runId: started.runId });
    else process.stdout.write(`check started: workflow ${started.workflowId}\n  its report: vaultpam-backup check status   or ${workflowUrl(cfg, started.workflowId)}\n`);
    return;
  }
  const status = await pollUntil(
    target,
    started.workflowId,
    async () => (await callApi<{ status: string; report?: CheckReport; error?: string }>(target, 'GET', `/v1/checks/${encodeURIComponent(started.workflowId)}`)).body,
    (s) => s.status !== 'RUNNING',
  );
  if (!status.report) throw new VaultpamBackupError('VPB_ERR_STEP_FAILED', 'check', `${started.workflowId} ended ${status.status}${status.error ? `: ${status.error}` : ''}`);
  if (opts.json) printJson(status.report);
  else process.stdout.write(`${formatCheckReport(status.report)}\n  workflow: ${workflowUrl(cfg, started.workflowId)}\n`);
  process.exitCode = status.report.ok ? 0 : 1;
}

export async function rotateKeysViaApi(target: ApiTarget, opts: { json?: boolean }): Promise<void> {
  const { body: result } = await callApi<RotationResult & { workflowId: string; runId: string }>(target, 'POST', '/v1/key-rotations');
  if (opts.json) printJson(result);
  else {
    process.stdout.write(`master key ${result.activeKeyId}: ${result.rewrappedCount} backup(s) rewrapped, ${result.alreadyCurrent} already under it, ${result.journalsRewrapped} restore journal(s), ${result.checkpointsRewrapped ?? 0} recordings checkpoint(s) and ${result.connectorExportsRewrapped ?? 0} connector export(s) rewrapped\n`);
    for (const r of result.rewrapped) process.stdout.write(`  ${r.backupId}  from ${r.from}  in ${r.locations.join(', ')}\n`);
  }
}

/** The API starts the drill; its report is the workflow's result, read in the Temporal Web UI (the API has no drill report route). */
export async function drillViaApi(target: ApiTarget, cfg: Config, opts: { json?: boolean }): Promise<void> {
  const { body } = await callApi<{ workflowId: string }>(target, 'POST', '/v1/restore-drills');
  if (opts.json) printJson(body);
  else process.stdout.write(`restore drill started: workflow ${body.workflowId}\n  its report: ${workflowUrl(cfg, body.workflowId)}\n`);
}
