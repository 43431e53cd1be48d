// How the `audit` command prints the trail and its check for people.
import type { AuditTrailReport } from '../audit/verify-audit-trail';

export function formatAuditReport(report: AuditTrailReport): string {
  const lines: string[] = [];
  for (const e of report.entries) {
    const subject = [e.subject.backupId, e.subject.workflowId].filter(Boolean).join(' ');
    const details = Object.entries(e.details)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
      .join(' ');
    lines.push(`${String(e.seq).padStart(6)}  ${e.at.slice(0, 19)}Z  ${e.kind.padEnd(20)} ${e.principal.padEnd(16)} ${subject}${details ? `  ${details}` : ''}${e.mac === 'valid' ? '' : `  [MAC ${e.mac}]`}`);
  }
  lines.push(
    `Audit trail of ${report.deployment}: ${report.checked} entries checked (head ${report.head.seq}), ${report.anchorsChecked} manifest anchor(s); ${report.ok ? 'INTACT' : `${report.problems.length} PROBLEM(S)`}`,
  );
  if (report.unverifiable) lines.push(`  ${report.unverifiable} entr${report.unverifiable === 1 ? 'y is' : 'ies are'} sealed under a master key no longer in the ring: add it to encryption.keys to check them`);
  for (const p of report.problems) lines.push(`  ${p.kind}${p.seq !== undefined ? ` #${p.seq}` : ''}${p.location ? ` at ${p.location}` : ''}: ${p.detail}`);
  return lines.join('\n');
}
