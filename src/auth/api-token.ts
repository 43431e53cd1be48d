// The API token format, vpb_<id>_<secret>: minted here, looked up by its id, compared by the SHA-256 of the whole token.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const TOKEN = /^vpb_([a-z0-9]{6,32})_([A-Za-z0-9_-]{43})$/;

export interface MintedToken {
  id: string;
  /** The whole token, shown once to its holder and stored nowhere. */
  token: string;
  sha256: string;
}

export function isApiTokenShaped(bearer: string): boolean {
  return bearer.startsWith('vpb_');
}

/** The id of a well-formed token, or undefined: the id is not secret and may be named in answers and logs. */
export function apiTokenId(bearer: string): string | undefined {
  return TOKEN.exec(bearer)?.[1];
}

export function apiTokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Whether `token` hashes to `sha256`, in time that does not depend on where the digests differ. */
export function apiTokenMatches(token: string, sha256: string): boolean {
  const given = createHash('sha256').update(token, 'utf8').digest();
  const expected = Buffer.from(sha256, 'hex');
  return expected.length === given.length && timingSafeEqual(given, expected);
}

/** A new token: a 12-character id (48 random bits) and a secret of 32 random bytes, base64url. */
export function mintApiToken(): MintedToken {
  const id = randomBytes(6).toString('hex');
  const token = `vpb_${id}_${randomBytes(32).toString('base64url')}`;
  return { id, token, sha256: apiTokenDigest(token) };
}
