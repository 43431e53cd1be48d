// The MAC of point-in-time records (base manifests, WAL marks): proves a holder of the master key wrote them, as for backup manifests.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { KeyRing } from '../crypto';
import { ManifestAuthenticationError, canonicalJson } from './manifest-mac';

export const recordAuthenticationSchema = z.object({ alg: z.literal('HMAC-SHA256'), keyId: z.string().min(1), mac: z.string().regex(/^[0-9a-f]{64}$/) });
export type RecordAuthentication = z.infer<typeof recordAuthenticationSchema>;

/** What a record is ("base manifest", "wal mark") is part of the MAC: one kind cannot pass for another. */
export type PointInTimeRecordKind = 'base manifest' | 'wal mark';

function macKey(keyRing: KeyRing, keyId: string, where: string): Buffer {
  const master = keyRing.get(keyId);
  if (!master) throw new ManifestAuthenticationError(`${where} is authenticated under master key "${keyId}", which is not in the key ring (it holds: ${keyRing.ids.join(', ')}); add that key to encryption.keys`);
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'vaultpam-backup point-in-time mac v1', 32));
}

function macOf(kind: PointInTimeRecordKind, record: object, key: Buffer): string {
  return createHmac('sha256', key).update(`vaultpam-backup ${kind}\n${canonicalJson(record)}`).digest('hex');
}

/** The record with its MAC under the active master key (any older MAC dropped). */
export function sealRecord<T extends object>(kind: PointInTimeRecordKind, record: T, keyRing: KeyRing): T & { authentication: RecordAuthentication } {
  const { authentication: _old, ...rest } = record as T & { authentication?: RecordAuthentication };
  const keyId = keyRing.activeKeyId;
  return { ...(rest as T), authentication: { alg: 'HMAC-SHA256', keyId, mac: macOf(kind, rest, macKey(keyRing, keyId, kind)) } };
}

/** Throws ManifestAuthenticationError naming `where` unless the record's MAC verifies. */
export function checkRecordMac(kind: PointInTimeRecordKind, record: { authentication: RecordAuthentication }, keyRing: KeyRing, where: string): void {
  const { authentication, ...rest } = record;
  const expected = Buffer.from(macOf(kind, rest, macKey(keyRing, authentication.keyId, where)), 'hex');
  const given = Buffer.from(authentication.mac, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new ManifestAuthenticationError(`the ${kind} at ${where} fails its MAC: it was edited after it was written, or not written by vaultpam-backup`);
  }
}
