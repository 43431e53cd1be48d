// The audit trail's chain and MAC logic on filesystem locations: sealing, rotation, idempotent writes, head recovery
// and every kind of damage the check names.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AUDIT_FORMAT, GENESIS_HASH, auditEntryHash, checkAuditEntryMac, sealAuditEntry, type AuditEntry, type AuditHead, type UnsealedAuditEntry } from '../../src/audit/audit-entry';
import { AuditConflictError, readAuditEntry, readAuditHead, writeAuditEntryEverywhere } from '../../src/audit/audit-store';
import { verifyAuditTrail } from '../../src/audit/verify-audit-trail';
import { KeyRing } from '../../src/crypto';
import { FilesystemLocation, auditEntryKey, type BackupLocation } from '../../src/storage';

const DEPLOYMENT = 'prod';
const keyA = randomBytes(32);
const keyB = randomBytes(32);
const ringA = new KeyRing({ activeKeyId: 'a', keys: new Map([['a', keyA]]) });
const ringAB = new KeyRing({ activeKeyId: 'b', keys: new Map([['a', keyA], ['b', keyB]]) });
const ringB = new KeyRing({ activeKeyId: 'b', keys: new Map([['b', keyB]]) });

function unsealed(seq: number, prev: string, overrides: Partial<UnsealedAuditEntry> = {}): UnsealedAuditEntry {
  return {
    format: AUDIT_FORMAT,
    seq,
    at: `2026-12-01T00:00:${String(seq).padStart(2, '0')}.000Z`,
    kind: 'backup.started',
    principal: 'alice',
    deployment: DEPLOYMENT,
    subject: { backupId: `b${seq}`, workflowId: 'backup-prod' },
    details: { target: 'production' },
    eventKey: `backup-prod/run/${seq}`,
    prev,
    ...overrides,
  };
}

async function putRaw(location: BackupLocation, entry: unknown, seq: number): Promise<void> {
  await location.put(auditEntryKey(DEPLOYMENT, seq), Buffer.from(JSON.stringify(entry)));
}

describe('audit entry MAC', () => {
  it('verifies a sealed entry and rejects any edited field', () => {
    const entry = sealAuditEntry(unsealed(1, GENESIS_HASH), ringA);
    expect(entry.keyId).toBe('a');
    expect(checkAuditEntryMac(entry, ringA)).toBe('valid');
    expect(checkAuditEntryMac({ ...entry, principal: 'mallory' }, ringA)).toBe('invalid');
    expect(checkAuditEntryMac({ ...entry, details: { target: 'staging' } }, ringA)).toBe('invalid');
    expect(checkAuditEntryMac({ ...entry, prev: 'f'.repeat(64) }, ringA)).toBe('invalid');
  });

  it('still verifies after rotation while the old key is in the ring; without it the entry is unverifiable, not tampered', () => {
    const old = sealAuditEntry(unsealed(1, GENESIS_HASH), ringA);
    expect(checkAuditEntryMac(old, ringAB)).toBe('valid');
    expect(checkAuditEntryMac(old, ringB)).toBe('unverifiable');
    expect(sealAuditEntry(unsealed(2, auditEntryHash(old)), ringAB).keyId).toBe('b');
  });

  it('chains by the SHA-256 of the whole previous entry, MAC included', () => {
    const first = sealAuditEntry(unsealed(1, GENESIS_HASH), ringA);
    const resealed = sealAuditEntry(unsealed(1, GENESIS_HASH), ringAB);
    expect(auditEntryHash(first)).toMatch(/^[0-9a-f]{64}$/);
    expect(auditEntryHash(first)).not.toBe(auditEntryHash(resealed));
  });
});

describe('audit store and check', () => {
  let dirs: string[];
  let locations: BackupLocation[];

  beforeEach(async () => {
    dirs = [await mkdtemp(join(tmpdir(), 'audit-a-')), await mkdtemp(join(tmpdir(), 'audit-b-'))];
    locations = dirs.map((path, i) => new FilesystemLocation({ name: i === 0 ? 'primary' : 'secondary', region: i === 0 ? 'eu' : 'us', kind: 'filesystem', path, prefix: 'backups' }));
  });
  afterEach(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  /** Appends `count` entries the way the writer does: each linked to the head before it. */
  async function appendEntries(count: number, ring = ringA, from: AuditHead = { seq: 0, hash: GENESIS_HASH }): Promise<AuditHead> {
    let head = from;
    for (let i = 0; i < count; i += 1) {
      const entry = await writeAuditEntryEverywhere(locations, unsealed(head.seq + 1, head.hash), ring);
      head = { seq: entry.seq, hash: auditEntryHash(entry) };
    }
    return head;
  }

  it('writes an entry once however often the write is repeated, and refuses a different entry at its place', async () => {
    const first = await writeAuditEntryEverywhere(locations, unsealed(1, GENESIS_HASH), ringA);
    // A retry after a rotation re-seals the same event under another key: the copy already written is kept.
    const again = await writeAuditEntryEverywhere(locations, unsealed(1, GENESIS_HASH), ringAB);
    expect(again).toEqual(first);
    for (const l of locations) expect(await readAuditEntry(l, DEPLOYMENT, 1)).toEqual(first);
    await expect(writeAuditEntryEverywhere(locations, unsealed(1, GENESIS_HASH, { principal: 'bob' }), ringA)).rejects.toThrow(AuditConflictError);
    await expect(writeAuditEntryEverywhere(locations, unsealed(1, GENESIS_HASH, { principal: 'bob' }), ringA)).rejects.toThrow(/location primary already holds a different audit entry 1/);
    const report = await verifyAuditTrail(locations, DEPLOYMENT, ringA);
    expect(report).toMatchObject({ ok: true, checked: 1, problems: [] });
  });

  it('finds the head again and copies what a location lacks', async () => {
    const head = await appendEntries(3);
    await locations[1]!.delete([auditEntryKey(DEPLOYMENT, 2), auditEntryKey(DEPLOYMENT, 3)]);
    const before = await verifyAuditTrail(locations, DEPLOYMENT, ringA);
    expect(before.problems.map((p) => `${p.kind} ${p.seq} ${p.location}`)).toEqual(['missing-at-location 2 secondary', 'missing-at-location 3 secondary']);
    const found = await readAuditHead(locations, DEPLOYMENT);
    expect(found.head).toEqual(head);
    expect(found.copied).toBe(2);
    expect(found.recent.map(([key]) => key)).toEqual(['backup-prod/run/1', 'backup-prod/run/2', 'backup-prod/run/3']);
    expect((await verifyAuditTrail(locations, DEPLOYMENT, ringA)).ok).toBe(true);
  });

  it('passes an intact trail, also across a key rotation, and lists entries since a time', async () => {
    const head = await appendEntries(3, ringA);
    await appendEntries(2, ringAB, head);
    const report = await verifyAuditTrail(locations, DEPLOYMENT, ringAB);
    expect(report).toMatchObject({ ok: true, checked: 5, unverifiable: 0, head: { seq: 5 } });
    expect(report.entries.map((e) => e.locations)).toEqual(Array(5).fill(['primary', 'secondary']));
    const since = await verifyAuditTrail(locations, DEPLOYMENT, ringAB, { since: new Date('2026-12-01T00:00:04.000Z') });
    expect(since.entries.map((e) => e.seq)).toEqual([4, 5]);
    // Without the old key: the first three cannot be checked, which is reported apart from tampering.
    const withoutOld = await verifyAuditTrail(locations, DEPLOYMENT, ringB);
    expect(withoutOld).toMatchObject({ ok: true, unverifiable: 3 });
    expect(withoutOld.entries.filter((e) => e.mac === 'unverifiable').map((e) => e.seq)).toEqual([1, 2, 3]);
  });

  it('names a removed entry as a gap', async () => {
    await appendEntries(5);
    for (const l of locations) await l.delete([auditEntryKey(DEPLOYMENT, 3)]);
    const report = await verifyAuditTrail(locations, DEPLOYMENT, ringA);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => `${p.kind} ${p.seq}`)).toEqual(['gap 3']);
    expect(report.problems[0]!.detail).toMatch(/audit entry 3 is missing at every location/);
  });

  it('names an edited entry by its MAC, and a replaced one (re-sealed with the key) by the broken link', async () => {
    await appendEntries(4);
    for (const l of locations) {
      const entry = (await readAuditEntry(l, DEPLOYMENT, 2))!;
      await putRaw(l, { ...entry, principal: 'mallory' }, 2);
    }
    const edited = await verifyAuditTrail(locations, DEPLOYMENT, ringA);
    expect(edited.problems.filter((p) => p.kind === 'mac').map((p) => `${p.seq} ${p.location}`)).toEqual(['2 primary', '2 secondary']);
    // Whoever holds the key could re-seal an edit, but the next entry's prev still names the original.
    for (const l of locations) {
      const entry = (await readAuditEntry(l, DEPLOYMENT, 2))!;
      const { keyId: _k, mac: _m, ...body } = entry;
      await putRaw(l, sealAuditEntry(body, ringA), 2);
    }
    const resealed = await verifyAuditTrail(locations, DEPLOYMENT, ringA);
    expect(resealed.problems.map((p) => `${p.kind} ${p.seq}`)).toEqual(['broken-link 3']);
  });

  it('names a location whose copy differs, and refuses to grow a trail whose locations disagree on the head', async () => {
    await appendEntries(3);
    const entry = (await readAuditEntry(locations[1]!, DEPLOYMENT, 3))!;
    const { keyId: _k, mac: _m, ...body } = entry;
    const other: AuditEntry = sealAuditEntry({ ...body, details: { target: 'staging' } }, ringA);
    await putRaw(locations[1]!, other, 3);
    const report = await verifyAuditTrail(locations, DEPLOYMENT, ringA);
    expect(report.problems.map((p) => `${p.kind} ${p.seq} ${p.location}`)).toEqual(['divergent 3 secondary']);
    expect(report.problems[0]!.detail).toMatch(/secondary holds another copy than primary/);
    await expect(readAuditHead(locations, DEPLOYMENT)).rejects.toThrow(/hold different audit entries 3/);
    // Checked at one location only, each copy is consistent in itself.
    expect((await verifyAuditTrail(locations, DEPLOYMENT, ringA, { location: 'secondary' })).ok).toBe(true);
  });

  it('refuses an entry with a field added after sealing', async () => {
    await appendEntries(1);
    const entry = (await readAuditEntry(locations[0]!, DEPLOYMENT, 1))!;
    await putRaw(locations[0]!, { ...entry, note: 'added later' }, 1);
    const report = await verifyAuditTrail(locations, DEPLOYMENT, ringA);
    expect(report.problems.map((p) => `${p.kind} ${p.seq} ${p.location}`)).toEqual(['unreadable 1 primary']);
  });
});
