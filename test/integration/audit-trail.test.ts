// The audit trail on the real stack: a backup and a confirmed restore leave their entries (with the requester and the
// confirmer), the restored VaultPAM's own audit log names the restore, the check passes on the intact trail and names
// a removed entry, an edited one, a cut tail and a divergent location; an append asked twice is written once.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app';
import { auditEntryHash, sealAuditEntry, type AuditEntry } from '../../src/audit/audit-entry';
import { listAuditSeqs, readAuditEntry } from '../../src/audit/audit-store';
import { readManifest } from '../../src/catalog/catalog';
import { repoRoot } from '../../src/config/local-stack';
import { backupResult, startBackup } from '../../src/operations/backup';
import { runAuditCheck } from '../../src/operations/audit';
import { restoreReport } from '../../src/operations/restore';
import { withClient } from '../../src/postgres';
import { auditEntryKey, type BackupLocation } from '../../src/storage';
import { APPEND_UPDATE, auditWorkflowId, type AppendRequest, type AuditHead, type AuditLogInput } from '../../workflows/audit-log-types';
import type { RestoreReport } from '../../workflows/restore-types';
import { apiCaller, authenticatorFor } from '../support/api-callers';
import { restoreFixture, type RestoreFixture } from '../support/restore-fixture';
import { temporalHarness, type TemporalHarness } from '../support/temporal';
import { until } from '../support/until';

/** The entry count the text report's summary line states. */
function intactEntries(stdout: string): number {
  return Number(/: (\d+) entries checked/.exec(stdout)?.[1]);
}

describe('audit trail', () => {
  let f: RestoreFixture;
  let h: TemporalHarness;
  let backupId: string;
  let report: RestoreReport;
  const alice = apiCaller('alice', ['restorer']);
  const bob = apiCaller('bob', ['approver']);
  let locations: BackupLocation[];
  let deployment: string;

  const entryAt = async (location: BackupLocation, seq: number) => (await readAuditEntry(location, deployment, seq))!;
  const putEntry = (location: BackupLocation, entry: unknown, seq: number) => location.put(auditEntryKey(deployment, seq), Buffer.from(JSON.stringify(entry)));
  /** Runs `damage`, checks what the audit check says, then puts every entry back as it was. */
  async function withDamage(damage: () => Promise<void>, check: () => Promise<void>): Promise<void> {
    const saved = new Map<string, AuditEntry>();
    for (const l of locations) for (const seq of await listAuditSeqs(l, deployment)) saved.set(`${l.name} ${seq}`, await entryAt(l, seq));
    try {
      await damage();
      await check();
    } finally {
      for (const l of locations) {
        for (const [key, entry] of saved) if (key.startsWith(`${l.name} `)) await putEntry(l, entry, entry.seq);
      }
    }
  }

  beforeAll(async () => {
    f = await restoreFixture();
    h = await temporalHarness(f.config);
    deployment = f.config.deployment.name;
    locations = f.deps.locations();
    await f.seed({ resources: 8, auditEntries: 40, recordings: 6, recordingBytes: 4_000 });
    backupId = (await h.withWorker(async () => backupResult(await startBackup(h.client, f.config, { taskQueue: h.taskQueue, requestedBy: 'alice', reason: 'nightly' })))).backupId;
    // Through the API, as people do it: alice's token requests, bob's approves; neither name is in a body.
    const api = buildApi({ config: f.config, client: h.client, authenticator: authenticatorFor(alice, bob), taskQueue: h.taskQueue });
    try {
      report = await h.withWorker(async () => {
        const started = await api.inject({ method: 'POST', url: '/v1/restores', headers: alice.headers, payload: { backupId, reason: 'audit test' } });
        expect(started.statusCode).toBe(202);
        const workflowId = (started.json() as { workflowId: string }).workflowId;
        const waiting = await until(async () => {
          const r = await restoreReport(h.client, workflowId);
          return r.status === 'awaiting-confirmation' ? r : undefined;
        }, 'the confirmation prompt');
        const confirmed = await api.inject({ method: 'POST', url: `/v1/restores/${workflowId}/confirm`, headers: bob.headers, payload: { backupId, lossReportDigest: waiting.lossReportDigest! } });
        expect(confirmed.statusCode).toBe(200);
        return (await h.client.workflow.getHandle(workflowId).result()) as RestoreReport;
      });
    } finally {
      await api.close();
    }
  }, 400_000);
  afterAll(async () => {
    await h?.close();
    await f?.destroy();
  });

  it('records the backup and the restore with who asked and who confirmed, in every location', async () => {
    expect(report.status).toBe('completed');
    expect(report.audit).toEqual({ trail: { recorded: true }, vaultpamLog: { recorded: true, id: expect.any(String) } });
    const audit = await runAuditCheck(f.config);
    expect(audit.problems).toEqual([]);
    expect(audit.ok).toBe(true);
    const kinds = audit.entries.map((e) => `${e.kind} ${e.principal}`);
    expect(kinds).toEqual([
      'backup.started alice',
      'backup.committed alice',
      'restore.requested alice',
      'restore.confirmed bob',
      // The safety snapshot, asked for by the restore.
      'backup.started restore',
      'backup.committed restore',
      'restore.completed alice',
    ]);
    const confirmed = audit.entries.find((e) => e.kind === 'restore.confirmed')!;
    expect(confirmed.subject.backupId).toBe(backupId);
    expect(confirmed.details).toMatchObject({ requestedBy: 'alice', confirmedBy: 'bob', restoreId: report.restoreId, approvals: ['bob'] });
    expect(audit.entries.every((e) => e.mac === 'valid' && e.locations.length === locations.length)).toBe(true);

    // Each manifest anchors its own "committed" entry.
    const manifest = (await readManifest(locations[0]!, deployment, backupId))!;
    const committed = audit.entries.find((e) => e.kind === 'backup.committed' && e.subject.backupId === backupId)!;
    expect(manifest.auditHead).toEqual({ seq: committed.seq, hash: auditEntryHash(await entryAt(locations[0]!, committed.seq)) });
    expect(audit.anchorsChecked).toBe(2);
  });

  it('leaves the restore in the restored VaultPAM\'s own audit log', async () => {
    const pg = f.config.deployment.postgres;
    const rows = await withClient(pg, f.deps.postgresPassword('production'), async (c) => (await c.query<{ actor: string; action: string; details: { message: string; backupId: string; approvedBy: string[] } }>(`SELECT actor, action, details FROM audit_log WHERE action = 'backup.restore'`)).rows);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.actor).toBe('vaultpam-backup');
    expect(rows[0]!.details.backupId).toBe(backupId);
    expect(rows[0]!.details.approvedBy).toEqual(['bob']);
    expect(rows[0]!.details.message).toMatch(new RegExp(`^restored backup ${backupId}, requested by alice, approved by bob, at \\d{4}-`));
    // The route is idempotent (a retried post leaves one line) and refuses a body that does not fit, changing nothing.
    const again = await f.api('POST', '/admin/audit-events', { actor: rows[0]!.actor, action: rows[0]!.action, details: rows[0]!.details });
    expect(again).toEqual({ status: 201, json: { id: report.audit!.vaultpamLog!.id } });
    expect((await f.api('POST', '/admin/audit-events', { actor: '', action: 'x', details: {} })).status).toBe(400);
    const count = await withClient(pg, f.deps.postgresPassword('production'), async (c) => (await c.query<{ n: string }>(`SELECT count(*) AS n FROM audit_log WHERE action = 'backup.restore'`)).rows[0]!.n);
    expect(count).toBe('1');
  });

  it('passes through the command line on the intact trail, and exits 1 naming a removed entry', async () => {
    const configPath = join(mkdtempSync(join(tmpdir(), 'vpb-audit-')), 'config.json');
    writeFileSync(configPath, JSON.stringify(f.config));
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin', 'vaultpam-backup.mjs'), '--config', configPath, 'audit', ...args], { encoding: 'utf8', timeout: 120_000 });
    const intact = cli();
    expect(intact.stdout).toMatch(/INTACT/);
    expect(intact.status).toBe(0);
    const viewer = apiCaller('auditor', ['viewer']);
    const api = buildApi({ config: f.config, client: h.client, authenticator: authenticatorFor(viewer), taskQueue: h.taskQueue });
    const auth = viewer.headers;
    try {
      const served = await api.inject({ method: 'GET', url: '/v1/audit?since=2000-01-01T00:00:00Z', headers: auth });
      expect(served.statusCode).toBe(200);
      expect(served.json()).toMatchObject({ ok: true, checked: intactEntries(intact.stdout) });
      await withDamage(
        async () => {
          for (const l of locations) await l.delete([auditEntryKey(deployment, 3)]);
        },
        async () => {
          const damaged = cli('--json');
          expect(damaged.status).toBe(1);
          const json = JSON.parse(damaged.stdout) as { ok: boolean; problems: { kind: string; seq: number }[] };
          expect(json.problems.map((p) => `${p.kind} ${p.seq}`)).toEqual(['gap 3']);
          const refused = await api.inject({ method: 'GET', url: '/v1/audit', headers: auth });
          expect(refused.statusCode).toBe(409);
          expect((refused.json() as { problems: { kind: string }[] }).problems.map((p) => p.kind)).toEqual(['gap']);
        },
      );
      expect((await api.inject({ method: 'GET', url: '/v1/audit?location=nowhere', headers: auth })).statusCode).toBe(400);
    } finally {
      await api.close();
    }
  }, 240_000);

  it('names an edited entry (its MAC), a cut tail (a manifest\'s anchor) and a divergent location', async () => {
    await withDamage(
      async () => {
        for (const l of locations) await putEntry(l, { ...(await entryAt(l, 4)), principal: 'mallory' }, 4);
      },
      async () => {
        const audit = await runAuditCheck(f.config);
        expect(audit.problems.map((p) => `${p.kind} ${p.seq} ${p.location}`)).toEqual(locations.map((l) => `mac 4 ${l.name}`));
      },
    );

    const seqs = await listAuditSeqs(locations[0]!, deployment);
    const last = seqs[seqs.length - 1]!;
    await withDamage(
      async () => {
        // The newest two entries gone everywhere: the snapshot's "committed" entry, which its manifest anchors, with them.
        for (const l of locations) await l.delete([auditEntryKey(deployment, last), auditEntryKey(deployment, last - 1)]);
      },
      async () => {
        const audit = await runAuditCheck(f.config);
        expect(audit.problems.map((p) => `${p.kind} ${p.seq}`)).toEqual([`anchor-missing ${last - 1}`]);
        expect(audit.problems[0]!.detail).toMatch(/entries were removed from the end of the trail/);
      },
    );

    await withDamage(
      async () => {
        // A copy re-sealed with the key (its MAC verifies) that says something else: only the comparison finds it.
        const { keyId: _k, mac: _m, ...body } = await entryAt(locations[1]!, 2);
        await putEntry(locations[1]!, sealAuditEntry({ ...body, principal: 'mallory' }, f.deps.keyRing()), 2);
      },
      async () => {
        const audit = await runAuditCheck(f.config);
        expect(audit.problems.map((p) => `${p.kind} ${p.seq} ${p.location}`)).toEqual([`divergent 2 ${locations[1]!.name}`]);
        // Checked alone, that location's copy verifies, but the backup's manifest and the next entry name the original.
        const alone = await runAuditCheck(f.config, { location: locations[1]!.name });
        expect(alone.problems.map((p) => `${p.kind} ${p.seq}`)).toEqual(['anchor-mismatch 2', 'broken-link 3']);
        expect(alone.problems[0]!.backupId).toBe(backupId);
      },
    );
    expect((await runAuditCheck(f.config)).ok).toBe(true);
  });

  it('continues as new every few entries, keeping the chain, and every append asked while it restarts is written once', async () => {
    const before = (await runAuditCheck(f.config)).head.seq;
    const append = async (eventKey: string): Promise<AuditHead> => {
      // What recordAuditEvent's retry does when the writer answers "started afresh": ask again with the same key.
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await h.client.workflow.executeUpdateWithStart<(i: AuditLogInput) => Promise<void>, AuditHead, [AppendRequest]>(APPEND_UPDATE, {
            args: [{ eventKey, event: { kind: 'check.completed', principal: 'schedule', subject: {}, details: { ok: true } } }],
            startWorkflowOperation: new WithStartWorkflowOperation('auditLogWorkflow', {
              workflowId: auditWorkflowId(deployment),
              taskQueue: h.taskQueue,
              args: [{ deployment, entriesPerRun: 2 }],
              workflowIdConflictPolicy: 'USE_EXISTING',
            }),
          });
        } catch (err) {
          if (attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    };
    const answers = await h.withWorker(() => Promise.all(Array.from({ length: 7 }, (_, i) => append(`cas-test/${i}`))));
    expect(answers.map((a) => a.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 7 }, (_, i) => before + 1 + i));
    const audit = await runAuditCheck(f.config);
    expect(audit.problems).toEqual([]);
    expect(audit.head.seq).toBe(before + 7);
    const runs = await until(async () => {
      let n = 0;
      for await (const _ of h.client.workflow.list({ query: `WorkflowId = '${auditWorkflowId(deployment)}' AND ExecutionStatus = 'ContinuedAsNew'` })) n += 1;
      return n >= 3 ? n : undefined;
    }, 'the writer runs that continued as new', 30_000);
    expect(runs).toBeGreaterThanOrEqual(3);
  });

  it('writes an append asked twice (a retried activity) once, even when the writer ended in between', async () => {
    const before = await listAuditSeqs(locations[0]!, deployment);
    const append = (eventKey: string) =>
      h.client.workflow.executeUpdateWithStart<(i: AuditLogInput) => Promise<void>, AuditHead, [AppendRequest]>(APPEND_UPDATE, {
        args: [{ eventKey, event: { kind: 'verify.completed', principal: 'carol', subject: { backupId }, details: { ok: true } } }],
        startWorkflowOperation: new WithStartWorkflowOperation('auditLogWorkflow', {
          workflowId: auditWorkflowId(deployment),
          taskQueue: h.taskQueue,
          args: [{ deployment }],
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
      });
    const [first, second, third] = await h.withWorker(async () => {
      const a = await append('test/run/1');
      // The writer ends once idle; the repeat starts a new run, which finds the key among the newest entries.
      await until(async () => ((await h.client.workflow.getHandle(auditWorkflowId(deployment)).describe()).status.name === 'COMPLETED' ? true : undefined), 'the writer to end');
      const b = await append('test/run/1');
      const c = await append('test/run/2');
      return [a, b, c];
    });
    expect(second).toEqual(first);
    expect(third.seq).toBe(first.seq + 1);
    expect(await listAuditSeqs(locations[0]!, deployment)).toEqual([...before, first.seq, third.seq]);
    expect((await runAuditCheck(f.config)).ok).toBe(true);
  });
});
