// Builds the BackupLocation a configuration entry describes.
import type { LocationConfig } from '../config/schema';
import type { BackupLocation } from './backup-location';
import { FilesystemLocation } from './filesystem-location';
import { createS3Client, type S3ClientOptions } from './s3-client';
import { S3Location } from './s3-location';
import type { TransferBudget } from './transfer-budget';

export interface LocationSecrets {
  /** The resolved value of an s3 location's `secretKey` reference; unused for filesystem locations. */
  secretKey?: string;
}

export interface LocationOptions extends S3ClientOptions {
  /** Where an S3 location's part buffers come from (the worker's, shared); default: a budget of its own, unlimited. */
  budget?: TransferBudget;
}

export function createLocation(config: LocationConfig, secrets: LocationSecrets = {}, options: LocationOptions = {}): BackupLocation {
  switch (config.kind) {
    case 'filesystem':
      return new FilesystemLocation(config);
    case 's3': {
      if (!secrets.secretKey) {
        throw new TypeError(`location "${config.name}" is an s3 location: pass its resolved secretKey (configuration: locations[].secretKey)`);
      }
      // A location's `region` is its geographic label, not necessarily an S3 signing region, so the
      // client learns the bucket's region from the server instead.
      const client = createS3Client({ ...config, region: undefined }, secrets.secretKey, { ...(options.partSize ? { partSize: options.partSize } : {}) });
      return new S3Location(config, client, options.budget);
    }
  }
}
