// The audit trail's check: every MAC, no gap in the sequence, every `prev` link, the same entry at every location, and
// every manifest's anchor present with the hash it recorded (so a trail cut at its end is noticed).
import { listBackups } from '../catalog/catalog';
import { canonicalJson } from '../catalog/manifest-mac';
import type { KeyRing } from '../crypto';
import type { BackupLocation } from '../storage';
import { GENESIS_HASH, auditEntryHash, checkAuditEntryMac, type AuditEntry, type AuditHead, type MacVerdict } from './audit-entry';
import { listAuditSeqs, readAuditEntry } from './audit-store';

export type AuditProblemKind = 'location-unavailable' | 'unreadable' | 'gap' | 'mac' | 'misplaced' | 'broken-link' | 'missing-at-location' | 'divergent' | 'anchor-missing' | 'anchor-mismatch';

export interface AuditProblem {
  kind: AuditProblemKind;
  seq?: number;
  location?: string;
  backupId?: string;
  /** What is wrong, then what to do. */
  detail: string;
}

export interface AuditListing {
  seq: number;
  at: string;
  kind: string;
  principal: string;
  subject: AuditEntry['subject'];
  details: AuditEntry['details'];
  /** `unverifiable`: sealed under a master key no longer in the ring; not evidence of tampering. */
  mac: MacVerdict;
  locations: string[];
}

export interface AuditTrailReport {
  deployment: string;
  ok: boolean;
  head: AuditHead;
  /** Entries checked (all of them, whatever `since` lists). */
  checked: number;
  unverifiable: number;
  anchorsChecked: number;
  entries: AuditListing[];
  problems: AuditProblem[];
}

export interface AuditTrailOptions {
  /** Check and list one location only (by name). */
  location?: string;
  /** List entries at or after this time (every entry is still checked). */
  since?: Date;
}

const EVIDENCE = 'keep the objects as they are for investigation, and review who can delete or write in the backup locations';

export async function verifyAuditTrail(allLocations: readonly BackupLocation[], deployment: string, keyRing: KeyRing, options: AuditTrailOptions = {}): Promise<AuditTrailReport> {
  const locations = options.location ? allLocations.filter((l) => l.name === options.location) : [...allLocations];
  if (locations.length === 0) {
    throw new Error(`no location is named "${options.location}"; the configuration has: ${allLocations.map((l) => l.name).join(', ')}`);
  }
  const problems: AuditProblem[] = [];
  const entries: AuditListing[] = [];

  const held = new Map<string, Set<number>>();
  for (const location of locations) {
    try {
      held.set(location.name, new Set(await listAuditSeqs(location, deployment)));
    } catch (err) {
      problems.push({ kind: 'location-unavailable', location: location.name, detail: `the audit trail at ${location.name} could not be listed: ${(err as Error).message}; check the location's address and credentials, then run the check again` });
    }
  }
  const readable = locations.filter((l) => held.has(l.name));
  let top = 0;
  for (const seqs of held.values()) for (const seq of seqs) top = Math.max(top, seq);

  // Anchors first, so each is compared as the walk reaches its entry: seq -> the hash and the backups that recorded it.
  const anchors = new Map<number, { hash: string; backupIds: string[] }[]>();
  let anchorsChecked = 0;
  for (const backup of await listBackups(readable, deployment, { keyRing })) {
    const anchor = backup.manifest.auditHead;
    if (!anchor) continue;
    anchorsChecked += 1;
    const list = anchors.get(anchor.seq) ?? [];
    const same = list.find((a) => a.hash === anchor.hash);
    if (same) same.backupIds.push(backup.backupId);
    else list.push({ hash: anchor.hash, backupIds: [backup.backupId] });
    anchors.set(anchor.seq, list);
  }

  let previous: { seq: number; hash: string } | undefined = { seq: 0, hash: GENESIS_HASH };
  let gapStart: number | undefined;
  let checked = 0;
  let unverifiable = 0;
  let head: AuditHead = { seq: 0, hash: GENESIS_HASH };
  const closeGap = (end: number) => {
    if (gapStart === undefined) return;
    const range = gapStart === end ? `entry ${gapStart} is` : `entries ${gapStart} to ${end} are`;
    problems.push({ kind: 'gap', seq: gapStart, detail: `audit ${range} missing at every location: removed after they were written. The trail cannot be rebuilt from here; ${EVIDENCE}` });
    gapStart = undefined;
  };

  for (let seq = 1; seq <= top; seq += 1) {
    const copies: { location: string; entry: AuditEntry; verdict: MacVerdict }[] = [];
    const lacking: string[] = [];
    for (const location of readable) {
      if (!held.get(location.name)!.has(seq)) {
        lacking.push(location.name);
        continue;
      }
      try {
        const entry = await readAuditEntry(location, deployment, seq);
        if (!entry) {
          lacking.push(location.name);
          continue;
        }
        copies.push({ location: location.name, entry, verdict: checkAuditEntryMac(entry, keyRing) });
      } catch (err) {
        problems.push({ kind: 'unreadable', seq, location: location.name, detail: `${(err as Error).message}; it was damaged or edited: copy the entry over from a location where it verifies, or ${EVIDENCE}` });
      }
    }
    if (copies.length === 0) {
      gapStart ??= seq;
      previous = undefined;
      continue;
    }
    closeGap(seq - 1);
    checked += 1;
    for (const copy of copies) {
      if (copy.verdict === 'invalid') {
        problems.push({ kind: 'mac', seq, location: copy.location, detail: `audit entry ${seq} at ${copy.location} fails its MAC: it was changed after it was written. ${copies.some((c) => c.verdict === 'valid') ? `Copy entry ${seq} from ${copies.find((c) => c.verdict === 'valid')!.location}, where it verifies, over it; ` : ''}${EVIDENCE}` });
      }
      if (copy.entry.seq !== seq || copy.entry.deployment !== deployment) {
        problems.push({ kind: 'misplaced', seq, location: copy.location, detail: `the object for audit entry ${seq} at ${copy.location} holds entry ${copy.entry.seq} of ${copy.entry.deployment}: it was moved or copied from elsewhere; ${EVIDENCE}` });
      }
    }
    // The copy that verifies stands for the entry; copies that differ from it are named.
    const reference = copies.find((c) => c.verdict === 'valid') ?? copies.find((c) => c.verdict === 'unverifiable') ?? copies[0]!;
    if (reference.verdict === 'unverifiable') unverifiable += 1;
    const referenceJson = canonicalJson(reference.entry);
    const differing = copies.filter((c) => canonicalJson(c.entry) !== referenceJson);
    if (differing.length) {
      problems.push({
        kind: 'divergent',
        seq,
        location: differing[0]!.location,
        detail: `audit entry ${seq} differs between locations: ${differing.map((c) => c.location).join(', ')} hold${differing.length === 1 ? 's' : ''} another copy than ${reference.location}. Copy the one that verifies (${reference.location}) over the others once the difference is understood; ${EVIDENCE}`,
      });
    }
    for (const location of lacking) {
      problems.push({ kind: 'missing-at-location', seq, location, detail: `audit entry ${seq} is missing at ${location} but present at ${reference.location}: copy it over (the audit writer copies missing entries when it next starts)` });
    }

    const hash = auditEntryHash(reference.entry);
    if (previous && previous.seq === seq - 1 && reference.entry.prev !== previous.hash) {
      problems.push({ kind: 'broken-link', seq, location: reference.location, detail: `audit entry ${seq} does not follow entry ${seq - 1} (its prev is ${reference.entry.prev.slice(0, 12)}…, entry ${seq - 1} hashes to ${previous.hash.slice(0, 12)}…): one of them was replaced; ${EVIDENCE}` });
    }
    for (const anchor of anchors.get(seq) ?? []) {
      if (anchor.hash !== hash) {
        problems.push({ kind: 'anchor-mismatch', seq, backupId: anchor.backupIds[0], detail: `backup ${anchor.backupIds.join(', ')} recorded audit entry ${seq} with hash ${anchor.hash.slice(0, 12)}…, but the entry now hashes to ${hash.slice(0, 12)}…: the entry was replaced after that backup committed; ${EVIDENCE}` });
      }
    }
    anchors.delete(seq);
    // An entry no copy of which verifies is named by its MAC; the link from it to the next is not judged again.
    previous = reference.verdict === 'invalid' ? undefined : { seq, hash };
    head = { seq, hash };

    if (!options.since || new Date(reference.entry.at) >= options.since) {
      const e = reference.entry;
      entries.push({ seq, at: e.at, kind: e.kind, principal: e.principal, subject: e.subject, details: e.details, mac: reference.verdict, locations: copies.map((c) => c.location) });
    }
  }
  closeGap(top);
  // Anchors past the newest entry, or at a removed one: the trail lost entries a committed backup saw.
  for (const [seq, list] of [...anchors.entries()].sort(([a], [b]) => a - b)) {
    for (const anchor of list) {
      problems.push({
        kind: 'anchor-missing',
        seq,
        backupId: anchor.backupIds[0],
        detail: `backup ${anchor.backupIds.join(', ')} recorded audit entry ${seq}, which no location holds${seq > top ? ` (the trail ends at ${top})` : ''}: entries were removed from the end of the trail after that backup committed; ${EVIDENCE}`,
      });
    }
  }
  return { deployment, ok: problems.length === 0, head, checked, unverifiable, anchorsChecked, entries, problems };
}
