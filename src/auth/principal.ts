// Who is calling: a principal and its roles, established by the API from a credential, never from a request body.
import type { FastifyRequest } from 'fastify';

/**
 * viewer: read the catalog, reports, metrics. operator: backup, verify, check, drill, preflight. restorer: start a
 * restore. approver: confirm one (never one the same principal requested). admin: key rotation, schedules, restore
 * cleanup. Roles add up; every role may also do what viewer may.
 */
export const ROLES = ['viewer', 'operator', 'restorer', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  /** Stable name of the person or system, e.g. "alice" or "ci-nightly"; what the audit trail and approvals record. */
  id: string;
  roles: Role[];
  /** How the credential was proven: a configured API token, a signed bearer token (JWT), or the explicit development mode. */
  via: 'token' | 'jwt' | 'development';
  /** The token's id (never its secret) or the JWT's jti, for the audit trail. */
  credentialId?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the API's authentication hook on every route that needs a caller. */
    principal?: Principal;
  }
}

/** The authenticated caller of a route; a route reached without one is a wiring bug, not the caller's fault. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error(`route ${request.method} ${request.routeOptions.url ?? request.url} ran without an authenticated principal`);
  return request.principal;
}

export function hasRole(principal: Principal, role: Role): boolean {
  return role === 'viewer' ? principal.roles.length > 0 : principal.roles.includes(role);
}
