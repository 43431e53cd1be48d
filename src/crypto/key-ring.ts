// The master keys the worker holds, by id, and which one wraps new backups.
import { inspect } from 'node:util';
import { KeyRingError } from './crypto-errors';
import { wrapKey, type WrappedKey } from './envelope';

const MASTER_KEY_LENGTH = 32;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]+={0,2}$|^[A-Za-z0-9_-]+={0,2}$/;

/**
 * Reads a 32-byte master key written as 64 hex digits or as base64 (standard or URL-safe).
 * The message on failure describes the value's shape only, never its content.
 */
export function parseMasterKey(text: string): Buffer {
  const value = text.trim();
  if (HEX_KEY.test(value)) return Buffer.from(value, 'hex');
  if (BASE64_KEY.test(value)) {
    const key = Buffer.from(value, value.includes('-') || value.includes('_') ? 'base64url' : 'base64');
    if (key.length === MASTER_KEY_LENGTH) return key;
    throw new KeyRingError(
      `a master key must be ${MASTER_KEY_LENGTH} bytes; this base64 value decodes to ${key.length} bytes (generate one with: openssl rand -base64 32)`,
    );
  }
  throw new KeyRingError(
    `a master key must be ${MASTER_KEY_LENGTH} bytes written as 64 hex digits or as base64; got ${value.length} characters that are neither (generate one with: openssl rand -base64 32)`,
  );
}

export interface KeyRingInit {
  /** The id whose key wraps the data keys of new backups. */
  activeKeyId: string;
  /** Every master key that may still be needed to unwrap older backups, by id; Buffers or hex/base64 text. */
  keys: ReadonlyMap<string, Buffer | string>;
}

export class KeyRing {
  readonly activeKeyId: string;
  readonly #keys: Map<string, Buffer>;

  constructor(init: KeyRingInit) {
    this.#keys = new Map();
    for (const [id, value] of init.keys) {
      if (id.length === 0) throw new KeyRingError('a master key id must not be empty');
      let key: Buffer;
      try {
        key = typeof value === 'string' ? parseMasterKey(value) : Buffer.from(value);
      } catch (err) {
        throw new KeyRingError(`master key "${id}": ${(err as Error).message}`);
      }
      if (key.length !== MASTER_KEY_LENGTH) {
        throw new KeyRingError(`master key "${id}" is ${key.length} bytes; a master key must be ${MASTER_KEY_LENGTH} bytes`);
      }
      this.#keys.set(id, key);
    }
    if (!this.#keys.has(init.activeKeyId)) {
      throw new KeyRingError(`activeKeyId "${init.activeKeyId}" names no key in the ring (it holds: ${this.ids.map((id) => `"${id}"`).join(', ') || 'no keys'})`);
    }
    this.activeKeyId = init.activeKeyId;
  }

  get ids(): string[] {
    return [...this.#keys.keys()];
  }

  has(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  get(keyId: string): Buffer | undefined {
    return this.#keys.get(keyId);
  }

  /** Wraps a data key under the active master key. */
  wrap(dataKey: Buffer): WrappedKey {
    const key = this.#keys.get(this.activeKeyId);
    if (!key) throw new KeyRingError(`activeKeyId "${this.activeKeyId}" names no key in the ring`);
    return wrapKey(dataKey, key, this.activeKeyId);
  }

  /** A key ring that reaches a log line or a JSON body shows its ids only. */
  toJSON(): { activeKeyId: string; keyIds: string[] } {
    return { activeKeyId: this.activeKeyId, keyIds: this.ids };
  }

  [inspect.custom](): string {
    return `KeyRing { activeKeyId: ${JSON.stringify(this.activeKeyId)}, keyIds: ${JSON.stringify(this.ids)} }`;
  }
}
