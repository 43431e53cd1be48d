// Errors of the crypto layer, each with a stable code an operator can search for.

/** Base class: `code` is stable across releases, the message may be reworded. */
export class CryptoError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An artifact failed authentication or ended early; its bytes must not be trusted. */
export class ArtifactCorruptError extends CryptoError {
  constructor(detail: string) {
    super('VPB_ERR_ARTIFACT_CORRUPT', `encrypted artifact is corrupt or truncated: ${detail}`);
  }
}

/** The artifact is intact but was sealed under another data key (checked before any chunk is opened). */
export class WrongDataKeyError extends CryptoError {
  constructor() {
    super(
      'VPB_ERR_WRONG_DATA_KEY',
      'encrypted artifact was sealed under a different data key (key check mismatch); unwrap the data key from this backup\'s own manifest',
    );
  }
}

/** A master key or the key ring itself is misconfigured. */
export class KeyRingError extends CryptoError {
  constructor(message: string) {
    super('VPB_ERR_KEY_RING', message);
  }
}

/** A wrapped data key names a master key id that the key ring does not hold. */
export class UnknownMasterKeyError extends CryptoError {
  readonly keyId: string;
  constructor(keyId: string, known: readonly string[]) {
    super(
      'VPB_ERR_UNKNOWN_MASTER_KEY',
      `the data key is wrapped by master key "${keyId}", which is not in the key ring (it holds: ${known.map((id) => `"${id}"`).join(', ') || 'no keys'}); add that key to encryption.keys`,
    );
    this.keyId = keyId;
  }
}

/** The master key under the right id has the wrong material, or the wrapped key was altered. */
export class KeyUnwrapError extends CryptoError {
  readonly keyId: string;
  constructor(keyId: string, detail: string) {
    super('VPB_ERR_KEY_UNWRAP', `cannot unwrap the data key with master key "${keyId}": ${detail}`);
    this.keyId = keyId;
  }
}
