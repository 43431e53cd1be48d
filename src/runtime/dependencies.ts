// The clients every activity needs, built once per process from the configuration; tests build them the same way or inject others.
import type * as Minio from 'minio';
import { resolveSecret } from '../config/secrets';
import { targetDeployment, type TargetName } from '../config/load';
import { MIN_PART_MIB, concurrentUploads, memoryBudgetMiB, type Config, type DeploymentConfig, type SecretRef } from '../config/schema';
import { KeyRing } from '../crypto';
import { DEFAULT_PART_SIZE, TransferBudget, createLocation, createS3Client, type BackupLocation } from '../storage';
import { RateLimiter } from '../storage/rate-limiter';
import { ThrottledLocation } from '../storage/throttled-location';
import { createCommandServiceControl } from '../vaultpam/command-service-control';
import type { ControlPlane, ServiceControl } from '../vaultpam/control-plane';
import { createHttpControlPlane } from '../vaultpam/http-control-plane';

export interface Dependencies {
  readonly config: Config;
  /** The activities' clock: injected so retention and RPO logic is tested with backdated data. */
  now(): Date;
  secret(ref: SecretRef): string;
  deployment(target: TargetName): DeploymentConfig;
  controlPlane(target: TargetName): ControlPlane;
  serviceControl(target: TargetName): ServiceControl;
  recordingsClient(target: TargetName): Minio.Client;
  /** The bandwidth limit on reads from a target's recordings bucket, shared by every copy; undefined when unlimited. */
  recordingsLimiter(target: TargetName): RateLimiter | undefined;
  /** The worker's upload buffers (backup.memoryBudgetMiB), shared by the backup locations and the restore's uploads. */
  transferBudget(): TransferBudget;
  /** Every configured backup location, in configuration order. */
  locations(): BackupLocation[];
  /** The master keys, resolved inside the worker. */
  keyRing(): KeyRing;
  /** The PostgreSQL password of a target, resolved inside the worker; undefined when none is configured. */
  postgresPassword(target: TargetName): string | undefined;
}

export interface DependencyOverrides {
  now?: () => Date;
  controlPlane?: (target: TargetName) => ControlPlane;
  serviceControl?: (target: TargetName) => ServiceControl;
  locations?: () => BackupLocation[];
}

const MIB = 1024 * 1024;

/**
 * An index and a list of blobs stream to each S3 location for the whole length of a copy (a backup's sync, a
 * checkpoint), each holding a part buffer while the recordings' uploads come and go beside them.
 */
export const STREAMS_BESIDE_COPY = 2;

/**
 * Part sizes fitted to the memory budget: two parts per upload, for `concurrency` uploads at once plus the streams
 * beside them, so that those streams never leave a recording's upload waiting for a buffer (the schema refuses a
 * budget that cannot hold one 5 MiB part per upload). A restore writes to one bucket; the recordings copy writes each
 * blob to every S3 location at once.
 */
export function uploadPartSizes(config: Pick<Config, 'backup' | 'locations'>): { partSize: number; locationPartSize: number } {
  const budgetBytes = memoryBudgetMiB(config) * MIB;
  const fitted = (uploads: number) => Math.max(MIN_PART_MIB * MIB, Math.min(DEFAULT_PART_SIZE, Math.floor(budgetBytes / (2 * uploads) / MIB) * MIB));
  const s3Locations = Math.max(1, config.locations.filter((l) => l.kind === 's3').length);
  return { partSize: fitted(config.backup.concurrency), locationPartSize: fitted(concurrentUploads(config) + STREAMS_BESIDE_COPY * s3Locations) };
}

export function createDependencies(config: Config, overrides: DependencyOverrides = {}): Dependencies {
  const cache = new Map<string, unknown>();
  const once = <T>(key: string, make: () => T): T => {
    if (!cache.has(key)) cache.set(key, make());
    return cache.get(key) as T;
  };
  const secret = (ref: SecretRef) => resolveSecret(ref);
  const budgetBytes = memoryBudgetMiB(config) * MIB;
  const { partSize, locationPartSize } = uploadPartSizes(config);
  const deployment = (target: TargetName) => targetDeployment(config, target);
  const transferBudget = () => once('transferBudget', () => new TransferBudget(budgetBytes));

  return {
    config,
    now: overrides.now ?? (() => new Date()),
    secret,
    deployment,
    controlPlane:
      overrides.controlPlane ??
      ((target) =>
        once(`cp:${target}`, () => {
          const cp = deployment(target).controlPlane;
          return createHttpControlPlane({ url: cp.url, token: secret(cp.token) });
        })),
    serviceControl:
      overrides.serviceControl ?? ((target) => once(`svc:${target}`, () => createCommandServiceControl(deployment(target).controlPlane))),
    recordingsClient: (target) =>
      once(`rec:${target}`, () => {
        const rec = deployment(target).recordings;
        return createS3Client(rec, secret(rec.secretKey), { partSize });
      }),
    recordingsLimiter: (target) =>
      once(`rec-limit:${target}`, () => {
        const limit = deployment(target).recordings.maxBytesPerSecond;
        return limit ? new RateLimiter(limit) : undefined;
      }),
    transferBudget,
    locations:
      overrides.locations ??
      (() =>
        once('locations', () =>
          config.locations.map((location) => {
            const made = createLocation(location, { secretKey: location.kind === 's3' ? secret(location.secretKey) : undefined }, { partSize: locationPartSize, budget: transferBudget() });
            return location.maxBytesPerSecond ? new ThrottledLocation(made, new RateLimiter(location.maxBytesPerSecond)) : made;
          }),
        )),
    keyRing: () =>
      once('keyRing', () => new KeyRing({ activeKeyId: config.encryption.activeKeyId, keys: new Map(config.encryption.keys.map((k) => [k.id, secret(k.secret)])) })),
    postgresPassword: (target) => {
      const ref = deployment(target).postgres.password;
      return ref ? secret(ref) : undefined;
    },
  };
}
