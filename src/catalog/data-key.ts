// A backup's data key: generated once, stored wrapped by the master key beside the backup, unwrapped only inside the worker.
import { generateDataKey, unwrapKey, wrappedKeySchema, type KeyRing, type WrappedKey } from '../crypto';
import { isNotFound, type BackupLocation, backupKey } from '../storage';
import { readAll } from './artifacts';

export const DATA_KEY_ARTIFACT = 'data-key.json';

/** Idempotent: a retry after a crash finds the key written by the first attempt instead of making another. */
export async function ensureDataKey(location: BackupLocation, deployment: string, backupId: string, keyRing: KeyRing): Promise<WrappedKey> {
  const existing = await readWrappedKey(location, deployment, backupId);
  if (existing) return existing;
  const wrapped = keyRing.wrap(generateDataKey());
  await location.put(backupKey(deployment, backupId, DATA_KEY_ARTIFACT), Buffer.from(JSON.stringify(wrapped)));
  return wrapped;
}

export async function readWrappedKey(location: BackupLocation, deployment: string, backupId: string): Promise<WrappedKey | undefined> {
  try {
    const text = (await readAll(await location.get(backupKey(deployment, backupId, DATA_KEY_ARTIFACT)))).toString('utf8');
    return wrappedKeySchema.parse(JSON.parse(text));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The plaintext data key of a backup in progress, from the first location that holds it. */
export async function loadDataKey(locations: readonly BackupLocation[], deployment: string, backupId: string, keyRing: KeyRing): Promise<Buffer> {
  for (const location of locations) {
    const wrapped = await readWrappedKey(location, deployment, backupId);
    if (wrapped) return unwrapKey(wrapped, keyRing);
  }
  throw new Error(`the data key of backup ${backupId} is in no location; the backup must be started again`);
}
