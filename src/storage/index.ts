// Public surface of the storage layer.
export type { BackupLocation, ByteRange, ListedObject, LocationKind, ObjectHead, ObjectStat, PutResult } from './backup-location';
export { readHeadOf } from './read-head';
export { createLocation, type LocationOptions, type LocationSecrets } from './create-location';
export { FilesystemLocation, type FilesystemLocationConfig } from './filesystem-location';
export {
  auditEntryKey,
  auditPrefix,
  backupKey,
  backupPrefix,
  backupsPrefix,
  blobKey,
  blobsPrefix,
  lastCheckKey,
  manifestKey,
  parseAuditEntryKey,
  parseBlobKey,
  parseManifestKey,
  parsePinKey,
  pinKey,
  pinsPrefix,
  restoreJournalKey,
  restoresPrefix,
  baseManifestKey,
  baseTarKey,
  basesPrefix,
  parseBaseManifestKey,
  parseWalKey,
  parseWalKeyEpochKey,
  walKeyEpochKey,
  walKeyEpochsPrefix,
  walMarkKey,
  walPartialKey,
  walPrefix,
  walSegmentKey,
  type WalObject,
} from './layout';
export { DEFAULT_PART_SIZE, createS3Client, type S3ClientOptions, type S3ConnectionSettings } from './s3-client';
export { S3Location, type S3LocationConfig } from './s3-location';
export { TransferBudget } from './transfer-budget';
export {
  InvalidKeyError,
  LocationUnavailableError,
  NotFoundError,
  SizeMismatchError,
  StorageError,
  isNotFound,
} from './storage-errors';
