// The sandbox's recordings bucket: the S3 client, bucket creation, object keys and recording content.
import { randomBytes } from 'node:crypto';
import * as Minio from 'minio';
import type { SandboxConfig } from './sandbox-config';

export function createRecordingsClient(config: Pick<SandboxConfig, 's3'>): Minio.Client {
  return new Minio.Client({
    endPoint: config.s3.endPoint,
    port: config.s3.port,
    useSSL: config.s3.useSSL,
    region: config.s3.region,
    accessKey: config.s3.accessKey,
    secretKey: config.s3.secretKey,
    pathStyle: true,
  });
}

export async function ensureBucket(client: Minio.Client, bucket: string, region: string): Promise<void> {
  if (await client.bucketExists(bucket)) return;
  try {
    await client.makeBucket(bucket, region);
  } catch (error) {
    // Another instance or test created it between the check and the create.
    if (!(await client.bucketExists(bucket))) throw error;
  }
}

/** `sessions/<yyyy>/<mm>/<dd>/<sessionId>.cast`, dated in UTC by the session's start. */
export function recordingKey(sessionId: string, startedAt: Date): string {
  const yyyy = String(startedAt.getUTCFullYear()).padStart(4, '0');
  const mm = String(startedAt.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(startedAt.getUTCDate()).padStart(2, '0');
  return `sessions/${yyyy}/${mm}/${dd}/${sessionId}.cast`;
}

/**
 * An asciicast v2 recording of exactly `bytes` bytes (or the smallest valid one when `bytes` is tiny): a header
 * line, then output events of random text, so that no two recordings share content (backups deduplicate by it).
 */
export function renderRecording(sessionId: string, startedAt: Date, bytes: number): Buffer {
  const header = `${JSON.stringify({ version: 2, width: 120, height: 32, timestamp: Math.floor(startedAt.getTime() / 1000), title: `session ${sessionId}` })}\n`;
  const parts: string[] = [header];
  let remaining = bytes - header.length;
  let clock = 0;
  const randomText = (length: number) => randomBytes(Math.ceil((length * 3) / 4) + 3).toString('base64').slice(0, length);
  for (;;) {
    clock += 0.05 + (randomBytes(1)[0] ?? 0) / 512;
    const open = `[${clock.toFixed(3)}, "o", "`;
    const overhead = open.length + '"]\n'.length;
    // Full lines while room remains for another one after; the last line takes the exact remainder.
    const length = remaining > 2048 + overhead ? 1024 : Math.max(1, remaining - overhead);
    parts.push(`${open}${randomText(length)}"]\n`);
    remaining -= overhead + length;
    if (remaining <= 0) break;
  }
  return Buffer.from(parts.join(''), 'utf8');
}

/** Deletes every object of the bucket (the bucket itself stays). Returns how many were deleted. */
export async function emptyBucket(client: Minio.Client, bucket: string): Promise<number> {
  // List first, delete after: deleting under a running listing could make the store skip keys.
  const names: string[] = [];
  for await (const item of client.listObjectsV2(bucket, '', true)) {
    if (typeof item.name === 'string') names.push(item.name);
  }
  for (let start = 0; start < names.length; start += 1000) {
    await client.removeObjects(bucket, names.slice(start, start + 1000));
  }
  return names.length;
}
