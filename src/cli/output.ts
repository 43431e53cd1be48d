// How the CLI prints: JSON for scripts, aligned text for people; errors with their code and nothing secret.
import type { PreflightReport } from '../../workflows/preflight-types';

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
