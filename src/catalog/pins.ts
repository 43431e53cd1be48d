// Pins: a backup in use by a running restore, verify, drill or check is named by a small object retention honours.
import { z } from 'zod';
import { parsePinKey, pinKey, pinsPrefix, type BackupLocation } from '../storage';
import { readAll } from './artifacts';

/** What may hold a pin; a holder is one workflow run, its pin removed in the workflow's own finally. */
export const pinOperationSchema = z.enum(['restore', 'verify', 'drill', 'check']);
export type PinOperation = z.infer<typeof pinOperationSchema>;

export const PIN_FORMAT = 1;

export const pinSchema = z.object({
  format: z.literal(PIN_FORMAT),
  backupId: z.string(),
  holder: z.object({ workflowId: z.string(), runId: z.string() }),
  operation: pinOperationSchema,
  createdAt: z.string(),
  /** After this the pin no longer protects the backup: a holder that died without unpinning cannot keep it forever. */
  expiresAt: z.string(),
});
export type Pin = z.infer<typeof pinSchema>;

/**
 * Longer than any holder runs (a restore waits up to its confirmation timeout, then transfers for hours); a pin whose
 * holder was terminated before its finally ran lapses after this.
 */
export const DEFAULT_PIN_TTL_MS = 3 * 86_400_000;

export function makePin(input: { backupId: string; holder: Pin['holder']; operation: PinOperation; now: Date; ttlMs?: number }): Pin {
  return {
    format: PIN_FORMAT,
    backupId: input.backupId,
    holder: input.holder,
    operation: input.operation,
    createdAt: input.now.toISOString(),
    expiresAt: new Date(input.now.getTime() + (input.ttlMs ?? DEFAULT_PIN_TTL_MS)).toISOString(),
  };
}

/**
 * Writes the pin in every location (same key per holder: a retry rewrites it). One location that took it is enough,
 * since retention lists every location strictly and honours a pin found in any; a location that is down must not
 * stop a restore that other copies can serve.
 */
export async function writePin(locations: readonly BackupLocation[], deployment: string, pin: Pin): Promise<{ written: string[]; failed: { location: string; message: string }[] }> {
  const key = pinKey(deployment, pin.backupId, pin.holder.workflowId);
  const body = Buffer.from(JSON.stringify(pin, null, 2));
  const written: string[] = [];
  const failed: { location: string; message: string }[] = [];
  for (const location of locations) {
    try {
      await location.put(key, body);
      written.push(location.name);
    } catch (err) {
      failed.push({ location: location.name, message: (err as Error).message });
    }
  }
  if (written.length === 0) {
    throw new Error(`backup ${pin.backupId} could not be pinned in any location: ${failed.map((f) => `${f.location}: ${f.message}`).join('; ')}`);
  }
  return { written, failed };
}

/** Removes one holder's pin everywhere; a location that cannot be reached keeps it until it expires. */
export async function removePin(locations: readonly BackupLocation[], deployment: string, backupId: string, holderWorkflowId: string): Promise<{ failed: { location: string; message: string }[] }> {
  const key = pinKey(deployment, backupId, holderWorkflowId);
  const failed: { location: string; message: string }[] = [];
  for (const location of locations) {
    try {
      await location.delete([key]);
    } catch (err) {
      failed.push({ location: location.name, message: (err as Error).message });
    }
  }
  return { failed };
}

/**
 * The pins in force at `now`, by backup id, from every location. Strict: a location that cannot be listed is an
 * error naming it, because whoever deletes by this answer must not mistake an outage for "no pin". A pin that cannot
 * be read counts as in force (keeping a backup too long is the safe mistake).
 */
export async function activePins(locations: readonly BackupLocation[], deployment: string, now: Date): Promise<Map<string, Pin[]>> {
  const pins = new Map<string, Pin[]>();
  for (const location of locations) {
    const keys: string[] = [];
    try {
      for await (const item of location.list(pinsPrefix(deployment))) keys.push(item.key);
    } catch (err) {
      throw new Error(`the pins in location "${location.name}" cannot be listed (${(err as Error).message}); nothing is pruned while a pin could be missed`);
    }
    for (const key of keys) {
      const parsed = parsePinKey(deployment, key);
      if (!parsed) continue;
      let pin: Pin;
      try {
        pin = pinSchema.parse(JSON.parse((await readAll(await location.get(key))).toString('utf8')));
      } catch {
        pin = makePin({ backupId: parsed.backupId, holder: { workflowId: parsed.holderWorkflowId, runId: 'unreadable' }, operation: 'check', now, ttlMs: 1 });
        pin.expiresAt = new Date(8.64e15).toISOString();
      }
      if (new Date(pin.expiresAt).getTime() <= now.getTime()) continue;
      const list = pins.get(pin.backupId) ?? [];
      if (!list.some((p) => p.holder.workflowId === pin.holder.workflowId)) list.push(pin);
      pins.set(pin.backupId, list);
    }
  }
  return pins;
}
