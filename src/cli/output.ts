// How the CLI prints: JSON for scripts, aligned text for people; errors with their code and nothing secret.
import { databaseBytes } from '../catalog/database-parts';
import type { PreflightReport } from '../../workflows/preflight-types';
import type { BackupResult } from '../../workflows/backup-types';
import type { VerifyReport } from '../../workflows/verify';
import type { LossReport, RestoreReport } from '../../workflows/restore-types';
import type { CheckReport } from '../../workflows/check-types';
import type { CatalogEntry } from '../catalog/catalog';
import { formatBytes } from '../operations/byte-size';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function formatPreflight(report: PreflightReport): string {
  const lines = [`Preflight of ${report.deployment} (${report.target}) at ${report.checkedAt}: ${report.ok ? 'PASSED' : 'FAILED'}`];
  const width = Math.max(...report.checks.map((c) => c.check.length));
  for (const c of report.checks) {
    lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.check.padEnd(width)}  ${c.summary}`);
    if (!c.ok && c.hint) lines.push(`        ${' '.repeat(width)}  -> ${c.hint}`);
  }
  return lines.join('\n');
}


export function formatBackupResult(r: BackupResult): string {
  return [
    `Backup ${r.backupId} of ${r.deployment}: COMMITTED in ${r.locations.join(', ')}`,
    `  write pause      ${r.pauseMs} ms`,
    `  database dump    ${formatBytes(r.dumpBytes)}`,
    `  recordings       ${r.recordings.objects} objects, ${formatBytes(r.recordings.bytes)}; copied ${r.recordings.copiedObjects} (${formatBytes(r.recordings.copiedBytes)}), shared ${r.recordings.reusedObjects} with the previous backup`,
    `  verified         ${r.verify.level}: pg_restore --list ${r.verify.dumpEntries} entries, ${r.verify.blobsConfirmed !== undefined ? `${r.verify.blobsConfirmed} blobs confirmed as written, ${r.verify.blobsRead} read` : `${r.verify.blobsChecked} blobs`}`,
  ].join('\n');
}

export function formatBackupList(entries: CatalogEntry[]): string {
  if (entries.length === 0) return 'no committed backup in any location';
  const rows = entries.map((e) => {
    const m = e.manifest;
    return `${e.backupId}  ${m.committedAt.slice(0, 19)}Z  ${String(m.recordings.objects).padStart(7)} rec  ${formatBytes(databaseBytes(m.artifacts)).padStart(10)} db  ${m.verify.level.padEnd(8)}  ${e.locations.join(',')}${e.problems.length ? `  (problems: ${e.problems.map((p) => p.location).join(',')})` : ''}`;
  });
  return [`BACKUP ID                 COMMITTED             RECORDINGS       DUMP  VERIFIED  LOCATIONS`, ...rows].join('\n');
}

export function formatVerify(r: VerifyReport): string {
  return [
    `Verify ${r.backupId}: ${r.ok ? 'OK' : 'FAILED'}`,
    ...r.locations.map((l) => `  ${l.ok ? 'ok  ' : 'FAIL'}  ${l.name}  ${l.ok ? `${l.level}, ${l.blobsChecked} blobs` : l.problem}`),
  ].join('\n');
}

export function formatRestoreReport(r: RestoreReport): string {
  const lines = [`Restore ${r.restoreId} of ${r.deployment} (${r.target}, ${r.scope.kind === 'full' ? 'full' : `resource ${r.scope.resourceId}`}): ${r.status.toUpperCase()}, step ${r.step}`];
  if (r.backup) {
    lines.push(`  backup           ${r.backup.backupId} (consistent point ${r.backup.recordingsPoint}), verified at ${r.backup.location}`);
    for (const s of r.backup.skipped) lines.push(`    skipped ${s.location}: ${s.problem}`);
    if (r.moment) {
      lines.push(`  moment           ${r.moment.at}: database from base ${r.moment.baseId} and ${r.moment.segments} WAL segment(s), recordings from checkpoint ${r.moment.checkpointId} (${r.moment.checkpointCoveredAt}), connectors from export ${r.moment.exportId} (${r.moment.exportedAt})`);
    }
  }
  if (r.lossReport) lines.push(...formatLossReport(r.lossReport), `  digest           ${r.lossReportDigest}`);
  if (r.recordingsCheck) {
    const c = r.recordingsCheck;
    lines.push(`  recording blobs  ${c.checked} checked, ${c.elsewhere} only at another location, ${c.unrecoverable.count} at none`);
    for (const u of c.unrecoverable.recordings) lines.push(`    at no location: ${u.key} (${u.problems.map((p) => `${p.location}: ${p.problem}`).join('; ')})`);
    if (c.unrecoverable.count > c.unrecoverable.recordings.length) lines.push(`    … and ${c.unrecoverable.count - c.unrecoverable.recordings.length} more`);
    if (c.unrecoverable.count > 0) lines.push(`    to restore without them, confirm with --accept-unrecoverable ${c.unrecoverable.digest}`);
  }
  if (r.requestedBy) lines.push(`  requested by     ${r.requestedBy} (signed)`);
  if (r.approvalsRequired !== undefined) {
    const given = (r.approvals ?? []).map((a) => `${a.principal} at ${a.at}${a.breakGlass ? ' (BREAK-GLASS)' : ''}`);
    lines.push(`  approvals        ${r.approvals?.length ?? 0} of ${r.approvalsRequired} required${given.length ? `: ${given.join(', ')}` : ''}`);
  }
  if (r.breakGlass) lines.push(`  BREAK-GLASS      approved alone by ${r.breakGlass.principal}: ${r.breakGlass.reason}`);
  for (const n of r.notifications ?? []) lines.push(`  webhook          ${n.event}: ${n.delivered ? 'delivered' : `NOT delivered after ${n.attempts} attempt(s): ${n.error ?? 'unknown error'}`}`);
  if (r.safetySnapshotId) lines.push(`  safety snapshot  ${r.safetySnapshotId}`);
  if (r.recordings) {
    lines.push(`  recordings       restored ${r.recordings.restored}, quarantined ${r.recordings.quarantined}, unchanged ${r.recordings.unchanged}${r.recordings.unrecoverable ? `, not restored (accepted as lost) ${r.recordings.unrecoverable}` : ''}`);
    for (const e of r.recordings.servedElsewhere?.examples ?? []) lines.push(`    read from ${e.location}: ${e.key} (${e.skipped.map((s) => `${s.location}: ${s.problem}`).join('; ')})`);
  }
  if (r.verify) lines.push(`  verified         ${Object.entries(r.verify.found).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (r.smokeTest) lines.push(`  smoke test       session ${r.smokeTest.sessionId} on resource ${r.smokeTest.resourceId}`);
  if (r.rtoMs !== undefined) lines.push(`  RTO              ${(r.rtoMs / 1000).toFixed(1)} s (stop to smoke test passed)`);
  if (r.recordingsCompleteMs !== undefined) lines.push(`  recordings done  ${(r.recordingsCompleteMs / 1000).toFixed(1)} s after the stop (restored behind the serving control plane)`);
  else if (r.recordingsProgress && r.status === 'running') lines.push(`  recordings       ${r.recordingsProgress.state}: ${r.recordingsProgress.planned} key(s) to change`);
  if (r.previousDatabase) lines.push(`  previous database kept as ${r.previousDatabase} (drop it once you are satisfied)`);
  if (r.error) lines.push(`  error            ${r.error}`);
  for (const step of r.rollback ?? []) lines.push(`  rollback         ${step.ok ? 'ok  ' : 'FAIL'} ${step.step}${step.error ? `: ${step.error}` : ''}`);
  return lines.join('\n');
}

export function formatCheckReport(r: CheckReport): string {
  const lines = [
    `Check of ${r.deployment} (${r.checkId}): ${r.ok ? 'CLEAN' : `${r.remainingCount} PROBLEM(S) REMAIN`}`,
    `  backups          ${r.backups} in ${r.locations.join(', ')}; manifests ${r.manifests.authenticated} authenticated, ${r.manifests.unauthenticated} unauthenticated (format 1, no MAC)`,
    `  blobs            ${r.blobsChecked} checked (present, size, header key); read whole: ${r.readData === 'none' ? 'none' : `${r.readData}, ${r.blobsRead} blobs, ${formatBytes(r.bytesRead)}`}`,
  ];
  const pit = r.pointInTime;
  if (pit) {
    lines.push(
      `  point in time    ${pit.checkpoints} recordings checkpoint(s), ${pit.connectorExports} connector export(s): ${pit.copiesChecked} location copies checked, ${pit.artifactsChecked} artifacts read; blobs ${pit.blobsChecked} checked${r.readData === 'none' ? '' : `, ${pit.blobsRead} read whole`}, ${pit.blobsShared} covered by what they build on`,
    );
  }
  lines.push(`  problems         ${r.problemCount} found${r.repair ? `, ${r.repairedCount} repaired` : ''}, ${r.remainingCount} remain`);
  for (const p of r.problems) {
    const what = [p.backupId && `backup ${p.backupId}`, p.checkpointId && `checkpoint ${p.checkpointId}`, p.exportId && `connector export ${p.exportId}`, p.recordingKey && `recording ${p.recordingKey}`, p.artifact && `artifact ${p.artifact}`].filter(Boolean).join(', ');
    const repair = p.repair ? (p.repair.outcome === 'repaired' ? `  -> repaired from ${p.repair.from}` : `  -> NOT repaired: ${p.repair.reason}`) : '';
    lines.push(`    ${p.kind.padEnd(19)} ${p.location}${what ? ` (${what})` : ''}: ${p.detail}${repair}`);
  }
  if (r.problemCount > r.problems.length) lines.push(`    ... ${r.problemCount - r.problems.length} more (run with --json, or narrow down with backups verify <id>)`);
  for (const o of r.orphans) {
    if (o.skipped) lines.push(`  orphans          ${o.location}: not counted: ${o.skipped}`);
    else if (o.count || o.missingCount) lines.push(`  listing          ${o.location}: ${o.count} orphan blob(s) (prune removes them)${o.missingCount ? `, ${o.missingCount} referenced blob(s) not listed` : ''}`);
  }
  return lines.join('\n');
}

/**
 * The loss report as a table, one row per key table: what the restore brings back (held by the backup, missing
 * now) beside what it loses (newer than the backup: created rows gone, modified rows reverted).
 */
export function formatLossReport(l: LossReport): string[] {
  const back = l.broughtBack;
  const rows: [string, string, string][] = [
    ['resources', back ? String(back.resources) : '?', `${l.resources.created} created, ${l.resources.modified} modified`],
    ['Safes', back ? String(back.safes) : '?', `${l.safes.created} created, ${l.safes.modified} modified`],
    ['credentials', back ? String(back.credentials) : '?', `${l.credentials.created} created, ${l.credentials.modified} modified, ${l.credentials.rotated} rotated`],
    ['audit entries', back ? String(back.audit_log) : '?', `${l.auditEntries} written`],
    ['sessions', back ? String(back.sessions) : '?', `${l.sessions} started`],
    [
      'recordings',
      back?.recordings ? `${back.recordings.objects} (${formatBytes(back.recordings.bytes)})` : '?',
      l.recordings ? `${l.recordings.objects} (${formatBytes(l.recordings.bytes)}) moved to quarantine` : 'not counted',
    ],
    ['connectors', '-', `${l.connectors.created} created, ${l.connectors.modified} modified`],
  ];
  const w0 = Math.max(...rows.map((row) => row[0].length));
  const w1 = Math.max('BRINGS BACK'.length, ...rows.map((row) => row[1].length));
  return [
    `  loss report against the backup's point ${l.since} (database ${l.database}):`,
    `    ${''.padEnd(w0)}  ${'BRINGS BACK'.padEnd(w1)}  LOSES (newer than the backup)`,
    ...rows.map(([what, brings, loses]) => `    ${what.padEnd(w0)}  ${brings.padEnd(w1)}  ${loses}`),
  ];
}
