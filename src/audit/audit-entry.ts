// An audit entry: its stored shape, the hash that chains it to the next one, and its MAC under the master key.
import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../catalog/manifest-mac';
import type { KeyRing } from '../crypto';

export const AUDIT_FORMAT = 1;
/** The `prev` of the first entry: there is nothing before it. */
export const GENESIS_HASH = '0'.repeat(64);
const MAC_INFO = 'vaultpam-backup audit v1';

export const AUDIT_EVENT_KINDS = [
  'backup.started',
  'backup.committed',
  'backup.failed',
  'backup.pruned',
  'verify.completed',
  'check.completed',
  'restore.requested',
  'restore.confirmed',
  'restore.refused',
  'restore.not-confirmed',
  'restore.completed',
  'restore.rolled-back',
  'restore.failed',
  'key.rotated',
] as const;
export type AuditEventKind = (typeof AUDIT_EVENT_KINDS)[number];

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
/** Details are small facts (ids, counts, identities, outcomes): never a secret, never a list that grows with the data. */
const detailValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.union([z.string(), z.number()]))]);

export const auditEventSchema = z.object({
  kind: z.enum(AUDIT_EVENT_KINDS),
  /** Who asked: the workflow's requestedBy, `schedule` for scheduled runs. */
  principal: z.string().min(1),
  subject: z.object({ backupId: z.string().optional(), workflowId: z.string().optional() }),
  details: z.record(z.string(), detailValue).default({}),
});
export type AuditEvent = z.input<typeof auditEventSchema>;

export const auditEntrySchema = z.object({
  format: z.literal(AUDIT_FORMAT),
  seq: z.number().int().positive(),
  /** Workflow time at which the writer appended it. */
  at: z.string(),
  kind: z.enum(AUDIT_EVENT_KINDS),
  principal: z.string().min(1),
  deployment: z.string().min(1),
  subject: z.object({ backupId: z.string().optional(), workflowId: z.string().optional() }),
  details: z.record(z.string(), detailValue),
  /**
   * The request that recorded it (the calling workflow run and activity): a retried request finds its entry already
   * written and is answered with it, so an event is never recorded twice.
   */
  eventKey: z.string().min(1),
  /** SHA-256 of the previous entry's canonical JSON (GENESIS_HASH for seq 1). */
  prev: hex64,
  /** The master key the MAC's key is derived from. */
  keyId: z.string().min(1),
  /** HMAC-SHA256 over the canonical JSON of every other field. */
  mac: hex64,
})
  // A field added after sealing would not be covered by the MAC: an entry with any is refused, not read.
  .strict();
export type AuditEntry = z.infer<typeof auditEntrySchema>;
export type UnsealedAuditEntry = Omit<AuditEntry, 'keyId' | 'mac'>;

/** The position of the newest entry: what the next one links to and what a manifest anchors. */
export interface AuditHead {
  seq: number;
  hash: string;
}
export const EMPTY_HEAD: AuditHead = { seq: 0, hash: GENESIS_HASH };

/** The hash the next entry's `prev` holds: SHA-256 of this entry's canonical JSON, MAC included. */
export function auditEntryHash(entry: AuditEntry): string {
  return createHash('sha256').update(canonicalJson(entry)).digest('hex');
}

function macKey(master: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), MAC_INFO, 32));
}

function macOf(body: Omit<AuditEntry, 'mac'>, master: Buffer): string {
  return createHmac('sha256', macKey(master)).update(canonicalJson(body)).digest('hex');
}

/** The entry with its MAC under the active master key. */
export function sealAuditEntry(entry: UnsealedAuditEntry, keyRing: KeyRing): AuditEntry {
  const keyId = keyRing.activeKeyId;
  const body = { ...entry, keyId };
  return { ...body, mac: macOf(body, keyRing.get(keyId)!) };
}

export type MacVerdict = 'valid' | 'invalid' | 'unverifiable';

/**
 * `unverifiable`: the entry names a master key the ring no longer holds (rotated out), which is not evidence of
 * tampering; `invalid`: the key is there and the MAC does not match, so the entry was changed after it was written.
 */
export function checkAuditEntryMac(entry: AuditEntry, keyRing: KeyRing): MacVerdict {
  const master = keyRing.get(entry.keyId);
  if (!master) return 'unverifiable';
  const { mac, ...body } = entry;
  const expected = Buffer.from(macOf(body, master), 'hex');
  const given = Buffer.from(mac, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? 'valid' : 'invalid';
}

/** The same event, whoever sealed it: two copies that differ only in key and MAC record one event. */
export function sameAuditBody(a: AuditEntry | UnsealedAuditEntry, b: AuditEntry | UnsealedAuditEntry): boolean {
  const strip = ({ keyId: _k, mac: _m, ...rest }: Partial<AuditEntry>) => canonicalJson(rest);
  return strip(a) === strip(b);
}

export function parseAuditEntry(text: string, where: string): AuditEntry {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`the audit entry at ${where} is not JSON`);
  }
  const parsed = auditEntrySchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`the audit entry at ${where} does not fit audit format ${AUDIT_FORMAT}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}
