// Reads and checks the deployment's audit trail straight from the locations (no worker, no Temporal): what the
// `audit` command and GET /v1/audit answer.
import type { AuditTrailOptions, AuditTrailReport } from '../audit/verify-audit-trail';
import { verifyAuditTrail } from '../audit/verify-audit-trail';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import { createDependencies, type Dependencies } from '../runtime/dependencies';

export type { AuditTrailReport };

/** Parses a --since / ?since= value: an ISO time, or a duration back from now like 24h or 7d. */
export function parseSince(value: string, now: Date = new Date()): Date {
  const relative = /^(\d+)([mhd])$/.exec(value.trim());
  if (relative) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(relative[1]) * unit);
  }
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `since "${value}" is neither a time (2026-12-01T00:00:00Z) nor a duration back from now (30m, 24h, 7d)`);
  return at;
}

export async function runAuditCheck(config: Config, options: AuditTrailOptions = {}, deps: Pick<Dependencies, 'locations' | 'keyRing'> = createDependencies(config)): Promise<AuditTrailReport> {
  const locations = deps.locations();
  if (options.location && !locations.some((l) => l.name === options.location)) {
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `no location is named "${options.location}"; the configuration has: ${locations.map((l) => l.name).join(', ')}`);
  }
  return verifyAuditTrail(locations, config.deployment.name, deps.keyRing(), options);
}
