// API callers for tests: a real token minted per caller, its hashed entry for api.auth.tokens, its Authorization header.
import { mintApiToken } from '../../src/auth/api-token';
import { createAuthenticator, type Authenticator } from '../../src/auth/authenticate';
import { ROLES, type Role } from '../../src/auth/principal';
import type { ApiTokenEntry, ConfigInput } from '../../src/config/schema';

export interface ApiCaller {
  principal: string;
  token: string;
  entry: ApiTokenEntry;
  headers: { authorization: string };
}

export function apiCaller(principal: string, roles: readonly Role[] = ROLES, extra: Partial<Pick<ApiTokenEntry, 'expiresAt' | 'revoked' | 'createdAt'>> = {}): ApiCaller {
  const { id, token, sha256 } = mintApiToken();
  const entry: ApiTokenEntry = { id, principal, roles: [...roles], sha256, createdAt: new Date().toISOString(), ...extra };
  return { principal, token, entry, headers: { authorization: `Bearer ${token}` } };
}

/** An `api` section whose auth knows exactly these callers (inline tokens), for isolatedConfig's `extra`. */
export function apiSectionFor(...callers: ApiCaller[]): NonNullable<ConfigInput['api']> {
  return { host: '127.0.0.1', port: 8470, auth: { mode: 'tokens', tokens: callers.map((c) => c.entry) } };
}

/** An authenticator that knows exactly these callers, for buildApi's `authenticator` option. */
export function authenticatorFor(...callers: ApiCaller[]): Authenticator {
  return createAuthenticator({ mode: 'tokens', tokens: callers.map((c) => c.entry) });
}

/** The secret part of a `vpb_<id>_<secret>` token: everything after the id (the base64url secret may itself hold "_"). */
export function secretOf(token: string): string {
  return token.slice(token.indexOf('_', 'vpb_'.length) + 1);
}
