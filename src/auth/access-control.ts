// Fastify hooks: who calls (onRequest sets request.principal) and whether the route's declared role lets them.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { VaultpamBackupError } from '../errors/catalogue';
import type { Authenticator } from './authenticate';
import { hasRole, type Role } from './principal';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The role a caller needs for this route. Every route declares a role or `public`. */
    role?: Role;
    /** Served without a credential (liveness, the OpenAPI document). */
    public?: boolean;
  }
}

function refuse(reply: FastifyReply, status: 401 | 403, error: VaultpamBackupError) {
  return reply.code(status).send({ error: { code: error.code, message: error.message } });
}

export function installAccessControl(app: FastifyInstance, authenticator: Authenticator): void {
  // A route that forgets its role would be open to every authenticated caller: refuse to register it.
  app.addHook('onRoute', (route) => {
    const config = route.config as { role?: Role; public?: boolean } | undefined;
    if (!config?.role && !config?.public) throw new Error(`route ${String(route.method)} ${route.url} declares neither a role nor public: add { config: { role: ... } }`);
  });

  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config as { role?: Role; public?: boolean };
    if (config.public) return;
    const result = await authenticator.authenticate(request.headers.authorization);
    if (!result.ok) {
      request.log.warn({ reason: result.reason }, 'refused: not authenticated');
      return refuse(reply, 401, new VaultpamBackupError('VPB_ERR_UNAUTHORIZED', result.reason));
    }
    request.principal = result.principal;
    // No route matched (a 404): the caller is known, the not-found handler answers.
    if (!config.role) return;
    if (!hasRole(result.principal, config.role)) {
      const held = result.principal.roles.length ? result.principal.roles.join(', ') : 'none';
      request.log.warn({ principal: result.principal.id, role: config.role }, 'refused: role missing');
      return refuse(reply, 403, new VaultpamBackupError('VPB_ERR_FORBIDDEN', result.principal.id, `${request.method} ${request.routeOptions.url}`, config.role, held));
    }
  });
}
