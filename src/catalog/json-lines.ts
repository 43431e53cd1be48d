// Lines of an encrypted JSON-lines artifact, decrypted, checked and parsed one at a time (flat memory whatever the count).
import { createInterface } from 'node:readline';
import type { BackupLocation } from '../storage';
import { openArtifact } from './artifacts';
import type { Artifact } from './manifest';

export async function* readJsonLines<T>(location: BackupLocation, artifact: Artifact, dataKey: Buffer): AsyncGenerator<T> {
  const stream = await openArtifact(location, artifact, dataKey);
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.length > 0) yield JSON.parse(line) as T;
  }
}

/** One JSON value as one line of a JSON-lines artifact. */
export function jsonLine(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`);
}
