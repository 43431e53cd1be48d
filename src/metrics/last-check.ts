// The result of the newest scheduled check, `<deployment>/checks/last.json` in a location, as the metrics read it.
import { z } from 'zod';
import { readAll } from '../catalog/artifacts';
import { isNotFound, lastCheckKey, type BackupLocation } from '../storage';

/**
 * The fields the metrics read of what the check workflow records when it ends (its whole report, see
 * activities/check.ts): whether the repository was found sound, and how many problems remain unrepaired.
 */
export const lastCheckSchema = z.object({
  ok: z.boolean(),
  finishedAt: z.iso.datetime({ offset: true }),
  remainingCount: z.number().int().min(0),
});
export type LastCheck = z.infer<typeof lastCheckSchema>;

export { lastCheckKey };

/** The location's last check, or undefined when none was ever written there. A malformed file is an error. */
export async function readLastCheck(location: BackupLocation, deployment: string): Promise<LastCheck | undefined> {
  let text: string;
  try {
    text = (await readAll(await location.get(lastCheckKey(deployment)))).toString('utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const parsed = lastCheckSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${location.describe()}/${lastCheckKey(deployment)} is not a check result: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
