// Public surface of the crypto layer.
export {
  ArtifactCorruptError,
  CryptoError,
  KeyRingError,
  KeyUnwrapError,
  UnknownMasterKeyError,
  WrongDataKeyError,
} from './crypto-errors';
export { generateDataKey, unwrapKey, wrapKey, wrappedKeySchema, type WrappedKey } from './envelope';
export { DEFAULT_CHUNK_SIZE, FORMAT_VERSION, HEADER_LENGTH, TAG_LENGTH, encryptedSize } from './frame-format';
export { KeyRing, parseMasterKey, type KeyRingInit } from './key-ring';
export { createDecryptStream, createEncryptStream, decryptBuffer, encryptBuffer, type EncryptOptions } from './stream-cipher';
