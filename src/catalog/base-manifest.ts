// A physical base backup's manifest: what it covers (LSNs, times, timeline), its tar's checksum and its wrapped data key.
import { z } from 'zod';
import { wrappedKeySchema, type KeyRing } from '../crypto';
import { baseManifestKey, basesPrefix, parseBaseManifestKey, type BackupLocation } from '../storage';
import { readTextIfPresent } from './artifacts';
import { checkRecordMac, recordAuthenticationSchema, sealRecord } from './point-in-time-mac';

const lsnText = z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/, 'must be a WAL position such as 16/B374D848');

export const baseManifestSchema = z.object({
  format: z.literal(1),
  deployment: z.string().min(1),
  baseId: z.string().min(1),
  /**
   * Bounds of the WAL the base needs, read from the server around pg_basebackup: startLsn at or before its
   * checkpoint, stopLsn at or past its end. Recovery replays from startLsn's segment and may stop at any commit after stopTime.
   */
  startLsn: lsnText,
  stopLsn: lsnText,
  timeline: z.number().int().positive(),
  startTime: z.iso.datetime({ offset: true }),
  /** The server's clock once the base was complete: the earliest moment this base can be recovered to. */
  stopTime: z.iso.datetime({ offset: true }),
  walSegmentBytes: z.number().int().positive(),
  serverVersion: z.string(),
  tar: z.object({ key: z.string(), size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/), plaintextBytes: z.number().int().nonnegative() }),
  dataKey: wrappedKeySchema,
  authentication: recordAuthenticationSchema,
});
export type BaseManifest = z.infer<typeof baseManifestSchema>;

export function sealBaseManifest(manifest: Omit<BaseManifest, 'authentication'>, keyRing: KeyRing): BaseManifest {
  return sealRecord('base manifest', manifest, keyRing);
}

/** The base's manifest at a location, checked (schema, MAC, its own place); undefined when absent. */
export async function readBaseManifest(location: BackupLocation, deployment: string, baseId: string, keyRing: KeyRing): Promise<BaseManifest | undefined> {
  const key = baseManifestKey(deployment, baseId);
  const text = await readTextIfPresent(location, key);
  if (text === undefined) return undefined;
  const where = `${key} at ${location.describe()}`;
  const parsed = baseManifestSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`the base manifest ${where} is malformed: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  checkRecordMac('base manifest', parsed.data, keyRing, where);
  if (parsed.data.deployment !== deployment || parsed.data.baseId !== baseId) throw new Error(`the base manifest ${where} belongs to ${parsed.data.deployment}/${parsed.data.baseId}: it was moved`);
  return parsed.data;
}

/** Every committed base at a location (ones without a manifest never finished and do not count), oldest first. */
export async function listBaseManifests(location: BackupLocation, deployment: string, keyRing: KeyRing): Promise<BaseManifest[]> {
  const ids: string[] = [];
  for await (const object of location.list(basesPrefix(deployment))) {
    const parsed = parseBaseManifestKey(deployment, object.key);
    if (parsed) ids.push(parsed.baseId);
  }
  const manifests: BaseManifest[] = [];
  for (const id of ids) {
    const manifest = await readBaseManifest(location, deployment, id, keyRing);
    if (manifest) manifests.push(manifest);
  }
  return manifests.sort((a, b) => Date.parse(a.stopTime) - Date.parse(b.stopTime));
}
