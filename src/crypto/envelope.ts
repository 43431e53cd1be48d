// Envelope encryption: random per-backup data keys, wrapped by a master key named by its id.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { KeyUnwrapError, UnknownMasterKeyError } from './crypto-errors';
import { DATA_KEY_LENGTH, assertDataKey } from './frame-format';
import type { KeyRing } from './key-ring';

const IV_LENGTH = 12;
const TAG_LENGTH = 16;

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

/** A wrapped data key as stored in a manifest: small, JSON-able, names its master key but holds no secret. */
export const wrappedKeySchema = z.object({
  keyId: z.string().min(1),
  alg: z.literal('A256GCM'),
  iv: base64,
  tag: base64,
  ciphertext: base64,
});
export type WrappedKey = z.infer<typeof wrappedKeySchema>;

/** Binding the key id as AAD stops a manifest from being edited to point at another master key. */
function wrapAad(keyId: string): Buffer {
  return Buffer.from(`vaultpam-backup wrapped data key A256GCM ${keyId}`, 'utf8');
}

export function generateDataKey(): Buffer {
  return randomBytes(DATA_KEY_LENGTH);
}

export function wrapKey(dataKey: Buffer, masterKey: Buffer, masterKeyId: string): WrappedKey {
  assertDataKey(dataKey);
  if (!Buffer.isBuffer(masterKey) || masterKey.length !== 32) {
    throw new TypeError(`master key "${masterKeyId}" must be a Buffer of 32 bytes`);
  }
  if (masterKeyId.length === 0) throw new TypeError('a master key id must not be empty');
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(wrapAad(masterKeyId));
  const ciphertext = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  return {
    keyId: masterKeyId,
    alg: 'A256GCM',
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  };
}

export function unwrapKey(wrapped: WrappedKey, keyRing: KeyRing): Buffer {
  const parsed = wrappedKeySchema.safeParse(wrapped);
  if (!parsed.success) {
    const claimedId: unknown = (wrapped as { keyId?: unknown } | null | undefined)?.keyId;
    const issue = parsed.error.issues[0];
    throw new KeyUnwrapError(
      typeof claimedId === 'string' ? claimedId : '(none)',
      `the wrapped key is malformed at "${issue?.path.join('.') || '(root)'}": ${issue?.message ?? 'invalid'}`,
    );
  }
  const { keyId } = parsed.data;
  const masterKey = keyRing.get(keyId);
  if (!masterKey) throw new UnknownMasterKeyError(keyId, keyRing.ids);
  const iv = Buffer.from(parsed.data.iv, 'base64');
  const tag = Buffer.from(parsed.data.tag, 'base64');
  if (iv.length !== IV_LENGTH || tag.length !== TAG_LENGTH) {
    throw new KeyUnwrapError(keyId, `the wrapped key's iv must be ${IV_LENGTH} bytes and its tag ${TAG_LENGTH} bytes`);
  }
  const decipher = createDecipheriv('aes-256-gcm', masterKey, iv, { authTagLength: TAG_LENGTH });
  decipher.setAAD(wrapAad(keyId));
  decipher.setAuthTag(tag);
  let dataKey: Buffer;
  try {
    dataKey = Buffer.concat([decipher.update(Buffer.from(parsed.data.ciphertext, 'base64')), decipher.final()]);
  } catch {
    throw new KeyUnwrapError(
      keyId,
      'authentication failed: the key ring holds different material under that id (check its secret), or the wrapped key was altered',
    );
  }
  if (dataKey.length !== DATA_KEY_LENGTH) {
    throw new KeyUnwrapError(keyId, `the unwrapped data key is ${dataKey.length} bytes, not ${DATA_KEY_LENGTH}`);
  }
  return dataKey;
}
