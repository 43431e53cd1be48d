// A restore's journal beside the backup it restores: its own data key, and encrypted artifacts (the previous
// connectors, the recordings plan) whose description is written last, so a retry can tell a finished entry.
import { Readable } from 'node:stream';
import { readAll, writeArtifact } from '../src/catalog/artifacts';
import type { Artifact } from '../src/catalog/manifest';
import { generateDataKey, unwrapKey, wrappedKeySchema } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { isNotFound, type BackupLocation } from '../src/storage';

export function restoreKey(deployment: string, restoreId: string, name: string): string {
  return `${deployment}/restores/${restoreId}/${name}`;
}

/** A restore's own data key (for its journal: the previous connectors, the recordings plan), kept beside it. */
export async function journalKey(location: BackupLocation, deps: Dependencies, deployment: string, restoreId: string): Promise<Buffer> {
  const key = restoreKey(deployment, restoreId, 'data-key.json');
  try {
    const wrapped = wrappedKeySchema.parse(JSON.parse((await readAll(await location.get(key))).toString('utf8')));
    return unwrapKey(wrapped, deps.keyRing());
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const dataKey = generateDataKey();
  await location.put(key, Buffer.from(JSON.stringify(deps.keyRing().wrap(dataKey))));
  return dataKey;
}

export async function journalArtifact(location: BackupLocation, name: string, deployment: string, restoreId: string): Promise<Artifact | undefined> {
  const key = restoreKey(deployment, restoreId, `${name}.json`);
  try {
    return JSON.parse((await readAll(await location.get(key))).toString('utf8')) as Artifact;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function writeJournal(location: BackupLocation, deps: Dependencies, deployment: string, restoreId: string, name: string, body: Readable | Buffer): Promise<Artifact> {
  const dataKey = await journalKey(location, deps, deployment, restoreId);
  const artifact = await writeArtifact(location, restoreKey(deployment, restoreId, `${name}.enc`), body, dataKey);
  // The artifact's description is written after it: a journal entry without one was never complete.
  await location.put(restoreKey(deployment, restoreId, `${name}.json`), Buffer.from(JSON.stringify(artifact)));
  return artifact;
}
