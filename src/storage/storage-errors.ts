// Errors of the storage layer, each with a stable code an operator can search for.

export class StorageError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Thrown by get() when no object exists under the key. */
export class NotFoundError extends StorageError {
  readonly location: string;
  readonly key: string;
  constructor(location: string, key: string, options?: { cause?: unknown }) {
    super('VPB_ERR_OBJECT_NOT_FOUND', `no object "${key}" in location "${location}"`, options);
    this.location = location;
    this.key = key;
  }
}

/** Duck-typed as well, so an error that crossed a module copy or a serialisation boundary still counts. */
export function isNotFound(err: unknown): err is NotFoundError {
  return err instanceof NotFoundError || (err instanceof Error && (err as { code?: unknown }).code === 'VPB_ERR_OBJECT_NOT_FOUND');
}

/** A key or prefix that could escape the location root or that a driver cannot store faithfully. */
export class InvalidKeyError extends StorageError {
  constructor(key: string, reason: string) {
    super(
      'VPB_ERR_INVALID_KEY',
      `invalid object key ${JSON.stringify(key)}: ${reason}; keys are relative paths such as "<deployment>/backups/<backupId>/manifest.json"`,
    );
  }
}

/** The location cannot be reached or prepared: wrong endpoint, credentials, permissions. */
export class LocationUnavailableError extends StorageError {
  readonly location: string;
  constructor(location: string, message: string, options?: { cause?: unknown }) {
    super('VPB_ERR_LOCATION_UNAVAILABLE', message, options);
    this.location = location;
  }
}

/** An upload whose body did not have the announced length; nothing was left under the key. */
export class SizeMismatchError extends StorageError {
  constructor(location: string, key: string, expected: number, actual: number) {
    super(
      'VPB_ERR_SIZE_MISMATCH',
      `upload of "${key}" to location "${location}" announced ${expected} bytes but the body held ${actual}; nothing was stored`,
    );
  }
}
