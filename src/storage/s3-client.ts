// The one way this project builds a minio client, shared by backup locations and the recordings bucket.
import { Client } from 'minio';
import type { S3Endpoint } from '../config/schema';

/**
 * Fixed multipart part size. minio sizes parts from the announced object size, and for a stream of
 * unknown size it assumes 5 TiB and buffers ~525 MiB parts; a fixed size keeps memory per upload near
 * two parts. 10,000 parts of 32 MiB cap one object at 312.5 GiB.
 * @default 32 MiB
 */
export const DEFAULT_PART_SIZE = 32 * 1024 * 1024;
export const MAX_PARTS = 10_000;

export interface S3ClientOptions {
  /** Multipart part size in bytes, at least 5 MiB. @default DEFAULT_PART_SIZE */
  partSize?: number;
}

/** `region` may be left out: minio then asks the server for the bucket's region (one cached request). */
export type S3ConnectionSettings = Pick<S3Endpoint, 'endPoint' | 'port' | 'useSSL' | 'accessKey'> & { region?: string | undefined };

/** `secretKey` is the resolved secret, never the SecretRef: resolution happens in the worker. */
export function createS3Client(endpoint: S3ConnectionSettings, secretKey: string, options: S3ClientOptions = {}): Client {
  if (typeof secretKey !== 'string' || secretKey.length === 0) {
    throw new TypeError(`no secret key for S3 access key "${endpoint.accessKey}" at ${endpoint.endPoint}:${endpoint.port}; resolve its secretKey reference first`);
  }
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  if (!Number.isInteger(partSize) || partSize < 5 * 1024 * 1024) {
    throw new RangeError(`partSize must be an integer of at least 5 MiB (S3's minimum part size), got ${partSize}`);
  }
  return new Client({
    endPoint: endpoint.endPoint,
    port: endpoint.port,
    useSSL: endpoint.useSSL,
    ...(endpoint.region ? { region: endpoint.region } : {}),
    accessKey: endpoint.accessKey,
    secretKey,
    partSize,
    // Path-style addressing works with every S3-compatible server, including IP endpoints.
    pathStyle: true,
  });
}
