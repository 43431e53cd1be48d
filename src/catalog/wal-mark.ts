// The WAL stream's high-water mark at a location: every commit up to `time` is in WAL this location holds up to `lsn`.
import { z } from 'zod';
import type { KeyRing } from '../crypto';
import { walMarkKey, type BackupLocation } from '../storage';
import { readTextIfPresent } from './artifacts';
import { checkRecordMac, recordAuthenticationSchema, sealRecord } from './point-in-time-mac';

export const walMarkSchema = z.object({
  format: z.literal(1),
  deployment: z.string().min(1),
  slot: z.string().min(1),
  timeline: z.number().int().positive(),
  /** The WAL the location holds reaches at least this position... */
  lsn: z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/),
  /** ...which the server had flushed at this moment of its clock (and a commit after it follows in that WAL). */
  time: z.iso.datetime({ offset: true }),
  walSegmentBytes: z.number().int().positive(),
  authentication: recordAuthenticationSchema,
});
export type WalMark = z.infer<typeof walMarkSchema>;

export async function writeWalMark(location: BackupLocation, mark: Omit<WalMark, 'authentication'>, keyRing: KeyRing): Promise<void> {
  const sealed = sealRecord('wal mark', mark, keyRing);
  await location.put(walMarkKey(mark.deployment), Buffer.from(`${JSON.stringify(sealed, null, 2)}\n`));
}

/** The mark at a location, checked; undefined when the stream has written none there. */
export async function readWalMark(location: BackupLocation, deployment: string, keyRing: KeyRing): Promise<WalMark | undefined> {
  const key = walMarkKey(deployment);
  const text = await readTextIfPresent(location, key);
  if (text === undefined) return undefined;
  const where = `${key} at ${location.describe()}`;
  const parsed = walMarkSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`the WAL mark ${where} is malformed: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  checkRecordMac('wal mark', parsed.data, keyRing, where);
  if (parsed.data.deployment !== deployment) throw new Error(`the WAL mark ${where} belongs to deployment ${parsed.data.deployment}`);
  return parsed.data;
}
