// Reading and writing audit entries in the backup locations: one entry written everywhere, safe to repeat, and the
// head (newest entry) found again from what the locations hold.
import { readTextIfPresent } from '../catalog/artifacts';
import { canonicalJson } from '../catalog/manifest-mac';
import type { KeyRing } from '../crypto';
import { auditEntryKey, auditPrefix, parseAuditEntryKey, type BackupLocation } from '../storage';
import { EMPTY_HEAD, auditEntryHash, checkAuditEntryMac, parseAuditEntry, sameAuditBody, sealAuditEntry, type AuditEntry, type AuditHead, type UnsealedAuditEntry } from './audit-entry';

/** Thrown when a location holds another entry at the sequence number being written, or the locations disagree on the head. */
export class AuditConflictError extends Error {
  override readonly name = 'AuditConflictError';
}

/** The entry stored at `seq`, or undefined when the location has none; an unreadable object is an error naming it. */
export async function readAuditEntry(location: BackupLocation, deployment: string, seq: number): Promise<AuditEntry | undefined> {
  const key = auditEntryKey(deployment, seq);
  const text = await readTextIfPresent(location, key);
  if (text === undefined) return undefined;
  return parseAuditEntry(text, `${location.name}:${key}`);
}

/** The sequence numbers a location holds, ascending (an audit trail holds one small key per event). */
export async function listAuditSeqs(location: BackupLocation, deployment: string): Promise<number[]> {
  const seqs: number[] = [];
  for await (const item of location.list(auditPrefix(deployment))) {
    const parsed = parseAuditEntryKey(deployment, item.key);
    if (parsed) seqs.push(parsed.seq);
  }
  return seqs.sort((a, b) => a - b);
}

async function putEntry(location: BackupLocation, entry: AuditEntry): Promise<void> {
  await location.put(auditEntryKey(entry.deployment, entry.seq), Buffer.from(`${JSON.stringify(entry, null, 2)}\n`));
}

/**
 * Writes the entry at `entry.seq` in every location and returns it as stored. Safe to repeat: a copy of the same event
 * already present (sealed by an earlier attempt, perhaps under another key) is kept and written where it is missing;
 * a different event at that sequence number is an AuditConflictError naming the location, and nothing is written.
 */
export async function writeAuditEntryEverywhere(locations: readonly BackupLocation[], unsealed: UnsealedAuditEntry, keyRing: KeyRing): Promise<AuditEntry> {
  const existing = await Promise.all(locations.map((l) => readAuditEntry(l, unsealed.deployment, unsealed.seq)));
  for (const [i, copy] of existing.entries()) {
    if (copy && !sameAuditBody(copy, unsealed)) {
      throw new AuditConflictError(
        `location ${locations[i]!.name} already holds a different audit entry ${unsealed.seq} of ${unsealed.deployment} (${copy.kind} at ${copy.at}); the trail was written by another writer or edited: run vaultpam-backup audit`,
      );
    }
  }
  const adopted = existing.find((copy): copy is AuditEntry => copy !== undefined && checkAuditEntryMac(copy, keyRing) === 'valid');
  const entry = adopted ?? sealAuditEntry(unsealed, keyRing);
  const stored = canonicalJson(entry);
  for (const [i, location] of locations.entries()) {
    const copy = existing[i];
    if (copy && canonicalJson(copy) === stored) continue;
    await putEntry(location, entry);
  }
  return entry;
}

/**
 * The newest entry across the locations. A location lacking entries another holds gets them copied (as stored), so
 * the trail is whole everywhere before it grows. Copies of the newest entry that differ are an AuditConflictError:
 * the next entry could not say which one it follows.
 */
export async function readAuditHead(
  locations: readonly BackupLocation[],
  deployment: string,
  options: { recentKept?: number; onProgress?: (copied: number) => void } = {},
): Promise<{ head: AuditHead; copied: number; recent: [string, AuditHead][] }> {
  const held = await Promise.all(locations.map(async (l) => new Set(await listAuditSeqs(l, deployment))));
  const all = new Set<number>();
  for (const seqs of held) for (const seq of seqs) all.add(seq);
  let copied = 0;
  for (const seq of [...all].sort((a, b) => a - b)) {
    const holder = held.findIndex((seqs) => seqs.has(seq));
    const lacking = locations.filter((_, i) => !held[i]!.has(seq));
    if (lacking.length === 0) continue;
    const entry = await readAuditEntry(locations[holder]!, deployment, seq);
    if (!entry) continue;
    for (const location of lacking) await putEntry(location, entry);
    copied += 1;
    options.onProgress?.(copied);
  }
  if (all.size === 0) return { head: EMPTY_HEAD, copied, recent: [] };
  const top = Math.max(...all);
  const copies = (await Promise.all(locations.map((l) => readAuditEntry(l, deployment, top)))).filter((e): e is AuditEntry => e !== undefined);
  const first = copies[0]!;
  if (copies.some((c) => canonicalJson(c) !== canonicalJson(first))) {
    throw new AuditConflictError(`the locations hold different audit entries ${top} of ${deployment}: the trail cannot grow until they agree; run vaultpam-backup audit to see which copy verifies`);
  }
  // The newest entries' event keys: a request retried after its entry was written (by a run that has ended since)
  // is recognised by the next run and not written twice.
  const recent: [string, AuditHead][] = [[first.eventKey, { seq: top, hash: auditEntryHash(first) }]];
  const sorted = [...all].sort((a, b) => b - a);
  for (const seq of sorted.slice(1, options.recentKept ?? 20)) {
    const holder = held.findIndex((seqs) => seqs.has(seq));
    const entry = await readAuditEntry(locations[holder]!, deployment, seq).catch(() => undefined);
    if (entry) recent.unshift([entry.eventKey, { seq, hash: auditEntryHash(entry) }]);
  }
  return { head: { seq: top, hash: auditEntryHash(first) }, copied, recent };
}
