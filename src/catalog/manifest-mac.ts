// The manifest's MAC: proves a manifest (and so every checksum and key it names) was written by a holder of the master key.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { KeyRing } from '../crypto';
import type { Manifest } from './manifest';

export type UnsealedManifest = Omit<Manifest, 'authentication'>;

/** Thrown when a manifest's MAC does not verify, or cannot be checked; the message names the manifest. */
export class ManifestAuthenticationError extends Error {
  override readonly name = 'ManifestAuthenticationError';
}

/** JSON with object keys sorted at every depth: the same manifest always hashes the same, whoever wrote it. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function macKey(keyRing: KeyRing, keyId: string, where: string): Buffer {
  const master = keyRing.get(keyId);
  if (!master) throw new ManifestAuthenticationError(`the manifest at ${where} is authenticated under master key "${keyId}", which is not in the key ring (it holds: ${keyRing.ids.join(', ')}); add that key to encryption.keys`);
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'vaultpam-backup manifest mac v1', 32));
}

function macOf(manifest: UnsealedManifest, key: Buffer): string {
  // The deployment and backup id are inside the manifest: a manifest moved to another backup's place fails too.
  return createHmac('sha256', key).update(`vaultpam-backup manifest\n${canonicalJson(manifest)}`).digest('hex');
}

/** The manifest with its MAC under the active master key (any older MAC dropped). */
export function sealManifest(manifest: Manifest | UnsealedManifest, keyRing: KeyRing): Manifest {
  const { authentication: _old, ...rest } = manifest as Manifest;
  const keyId = keyRing.activeKeyId;
  return { ...rest, authentication: { alg: 'HMAC-SHA256', keyId, mac: macOf(rest, macKey(keyRing, keyId, `backup ${rest.backupId}`)) } };
}

/**
 * 'authenticated' when the MAC verifies; 'unauthenticated' for a format 1 manifest written before MACs existed.
 * Throws ManifestAuthenticationError for a format 2 manifest without a MAC or with one that does not verify.
 */
export function checkManifestMac(manifest: Manifest, keyRing: KeyRing, where: string): 'authenticated' | 'unauthenticated' {
  const { authentication, ...rest } = manifest;
  if (!authentication) {
    if (manifest.format === 1) return 'unauthenticated';
    throw new ManifestAuthenticationError(`the manifest at ${where} has no MAC although its format requires one: it was edited or not written by vaultpam-backup`);
  }
  const expected = Buffer.from(macOf(rest, macKey(keyRing, authentication.keyId, where)), 'hex');
  const given = Buffer.from(authentication.mac, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new ManifestAuthenticationError(`the manifest at ${where} fails its MAC: it was edited after it was written (restore from another location, or run vaultpam-backup check --repair)`);
  }
  return 'authenticated';
}

/** The MAC block of a manifest-like document: HMAC-SHA256 over its canonical JSON, behind a label naming its kind. */
export interface DocumentMac {
  alg: 'HMAC-SHA256';
  keyId: string;
  mac: string;
}

function documentMacOf(label: string, body: unknown, key: Buffer): string {
  // The label keeps one kind of document from passing as another (a checkpoint manifest is never a backup's).
  return createHmac('sha256', key).update(`vaultpam-backup ${label}\n${canonicalJson(body)}`).digest('hex');
}

/** `document` with its MAC under the active master key (any older MAC dropped); `label` names the kind of document. */
export function sealDocument<T extends { authentication?: DocumentMac }>(document: T, label: string, keyRing: KeyRing, where: string): T & { authentication: DocumentMac } {
  const { authentication: _old, ...rest } = document;
  const keyId = keyRing.activeKeyId;
  return { ...(rest as T), authentication: { alg: 'HMAC-SHA256', keyId, mac: documentMacOf(label, rest, macKey(keyRing, keyId, where)) } };
}

/** Throws ManifestAuthenticationError naming `where` when the document has no MAC or one that does not verify. */
export function checkDocumentMac(document: { authentication?: DocumentMac }, label: string, keyRing: KeyRing, where: string): void {
  const { authentication, ...rest } = document;
  if (!authentication) throw new ManifestAuthenticationError(`the ${label} at ${where} has no MAC: it was edited or not written by vaultpam-backup`);
  const expected = Buffer.from(documentMacOf(label, rest, macKey(keyRing, authentication.keyId, where)), 'hex');
  const given = Buffer.from(authentication.mac, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new ManifestAuthenticationError(`the ${label} at ${where} fails its MAC: it was edited after it was written (read it from another location)`);
  }
}
