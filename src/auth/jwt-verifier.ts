// Verifies signed bearer tokens (JWT) from the organisation's identity provider with jose: signature, issuer, audience, expiry.
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { ApiJwtConfig } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import { ROLES, type Role } from './principal';
import type { CredentialCheck } from './token-store';

export interface JwtVerifier {
  check(bearer: string): Promise<CredentialCheck>;
}

type VerificationKey = JWTVerifyGetKey | ReturnType<typeof createPublicKey>;

/** The key (or key set) tokens must be signed with: the provider's JWKS by URL, or a PEM public key or JWKS file. */
function verificationKey(config: ApiJwtConfig): VerificationKey {
  if (config.jwksUrl) return createRemoteJWKSet(new URL(config.jwksUrl));
  const path = config.publicKeyFile!;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `api.auth.jwt.publicKeyFile ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): check its path`);
  }
  try {
    if (text.trimStart().startsWith('{')) return createLocalJWKSet(JSON.parse(text) as Parameters<typeof createLocalJWKSet>[0]);
    return createPublicKey(text);
  } catch (err) {
    throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `api.auth.jwt.publicKeyFile ${path} is neither a PEM public key nor a JWKS (${(err as Error).message}): export the provider's public signing key`);
  }
}

/** jose's reason, put in words an operator can act on. */
function describeJoseError(err: unknown): string {
  if (err instanceof errors.JWTExpired) return `the JWT expired${typeof err.payload.exp === 'number' ? ` (at ${new Date(err.payload.exp * 1000).toISOString()})` : ''}: get a fresh one from the identity provider`;
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return `the JWT's issuer is ${JSON.stringify(err.payload.iss)}, not the configured api.auth.jwt.issuer`;
    if (err.claim === 'aud') return `the JWT's audience is ${JSON.stringify(err.payload.aud)}, not the configured api.auth.jwt.audience`;
    return `the JWT's "${err.claim}" claim is not accepted: ${err.reason}`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the JWT signature does not verify against the configured key: it was signed by another key';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key of the identity provider matches the JWT (its "kid" or algorithm): it was signed by another key';
  if (err instanceof errors.JOSEAlgNotAllowed) return `the JWT's algorithm is not accepted (${err.message}): see api.auth.jwt.algorithms`;
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JOSEError) return (err as Error).message;
  return `the JWT cannot be read: ${(err as Error).message}`;
}

function rolesOf(value: unknown): Role[] {
  const names = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[\s,]+/) : [];
  // Roles of other applications in the same claim are ignored; a token with none of ours is refused later, with 403.
  return [...new Set(names.filter((n): n is Role => typeof n === 'string' && (ROLES as readonly string[]).includes(n)))];
}

export function createJwtVerifier(config: ApiJwtConfig): JwtVerifier {
  const key = verificationKey(config);
  const options = { issuer: config.issuer, audience: config.audience, ...(config.algorithms ? { algorithms: config.algorithms } : {}) };
  return {
    async check(bearer) {
      let payload: JWTPayload;
      try {
        payload = typeof key === 'function' ? (await jwtVerify(bearer, key, options)).payload : (await jwtVerify(bearer, key, options)).payload;
      } catch (err) {
        return { ok: false, reason: `JWT invalid: ${describeJoseError(err)}` };
      }
      const id = payload[config.principalClaim];
      if (typeof id !== 'string' || id === '' || id.length > 200) return { ok: false, reason: `JWT invalid: it has no "${config.principalClaim}" claim naming the caller in at most 200 characters (api.auth.jwt.principalClaim)` };
      return { ok: true, principal: { id, roles: rolesOf(payload[config.rolesClaim]), via: 'jwt', ...(payload.jti ? { credentialId: payload.jti } : {}) } };
    },
  };
}
