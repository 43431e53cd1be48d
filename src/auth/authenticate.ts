// Turns an Authorization header into a principal: an API token, a JWT, or (development mode, loopback only) nobody in particular.
import type { ApiAuthConfig } from '../config/schema';
import { createJwtVerifier, type JwtVerifier } from './jwt-verifier';
import { isApiTokenShaped } from './api-token';
import { ROLES, type Principal } from './principal';
import { ApiTokenStore, type CredentialCheck } from './token-store';

export interface Authenticator {
  readonly mode: ApiAuthConfig['mode'];
  authenticate(authorization: string | undefined): Promise<CredentialCheck>;
}

export interface AuthenticatorOptions {
  /** @default () => new Date() */
  now?: () => Date;
  /** Told when the tokens file cannot be re-read. */
  onReloadError?: (error: Error) => void;
}

/** The caller of development mode: no credential, every role. */
export const DEVELOPER: Principal = Object.freeze({ id: 'developer', roles: [...ROLES], via: 'development' as const });

const HOW = 'send "Authorization: Bearer <token>" with an API token from `vaultpam-backup tokens create`';

export function createAuthenticator(config: ApiAuthConfig, options: AuthenticatorOptions = {}): Authenticator {
  if (config.mode === 'development') return { mode: 'development', authenticate: async () => ({ ok: true, principal: DEVELOPER }) };
  const store = config.tokensFile || config.tokens?.length
    ? new ApiTokenStore({
        ...(config.tokens ? { tokens: config.tokens } : {}),
        ...(config.tokensFile ? { tokensFile: config.tokensFile } : {}),
        ...(options.now ? { now: options.now } : {}),
        ...(options.onReloadError ? { onReloadError: options.onReloadError } : {}),
      })
    : undefined;
  const jwt: JwtVerifier | undefined = config.jwt ? createJwtVerifier(config.jwt) : undefined;
  return {
    mode: 'tokens',
    async authenticate(authorization) {
      if (authorization === undefined || authorization === '') return { ok: false, reason: `no Authorization header: ${HOW}${jwt ? ' or a JWT from the identity provider' : ''}` };
      const match = /^Bearer +(\S+)\s*$/i.exec(authorization);
      if (!match) return { ok: false, reason: `the Authorization header is not "Bearer <token>": ${HOW}` };
      const bearer = match[1]!;
      if (isApiTokenShaped(bearer)) {
        return store ? store.check(bearer) : { ok: false, reason: 'an API token was sent but none are configured (api.auth.tokensFile or api.auth.tokens): use a JWT from the identity provider' };
      }
      if (!jwt) return { ok: false, reason: `the bearer token is not an API token (vpb_<id>_<secret>) and no JWT issuer is configured (api.auth.jwt): ${HOW}` };
      return jwt.check(bearer);
    },
  };
}
