// The HTTP API: bearer-token auth, zod-validated bodies, errors with stable codes; built without listening so tests can inject().
import { timingSafeEqual } from 'node:crypto';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config/schema';
import { formatIssues } from '../config/load';
import { VaultpamBackupError } from '../errors/catalogue';
import { runPreflight } from '../operations/preflight';

export interface ApiOptions {
  config: Config;
  client: Client;
  /** The bearer token callers present; undefined disables auth (only for a loopback-bound API). */
  token: string | undefined;
  /** Task queue the workflows run on. @default config.temporal.taskQueue */
  taskQueue?: string;
  logger?: boolean;
}

const preflightBody = z.object({ target: z.enum(['production', 'staging']).default('production') }).strict();

function sendError(reply: FastifyReply, status: number, code: string, message: string) {
  return reply.code(status).send({ error: { code, message } });
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function buildApi(options: ApiOptions): FastifyInstance {
  const { config, client } = options;
  const taskQueue = options.taskQueue ?? config.temporal.taskQueue;
  const app = Fastify({
    logger: options.logger ? { redact: ['req.headers.authorization'] } : false,
    bodyLimit: 64 * 1024,
  });

  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz' || options.token === undefined) return;
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!tokenMatches(given, options.token)) {
      return sendError(reply, 401, 'VPB_ERR_UNAUTHORIZED', 'missing or wrong bearer token: send "Authorization: Bearer <api token>"');
    }
  });

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof VaultpamBackupError) {
      const status = error.code === 'VPB_ERR_INPUT_INVALID' ? 400 : error.code === 'VPB_ERR_BACKUP_RUNNING' ? 409 : error.code === 'VPB_ERR_BACKUP_NOT_FOUND' ? 404 : 502;
      return sendError(reply, status, error.code, error.message);
    }
    const fastifyError = error as { statusCode?: number; code?: string; message: string };
    if (fastifyError.statusCode && fastifyError.statusCode < 500) {
      return sendError(reply, fastifyError.statusCode, 'VPB_ERR_INPUT_INVALID', fastifyError.message);
    }
    reply.log.error(error);
    return sendError(reply, 500, 'VPB_ERR_INTERNAL', 'internal error; see the API server log');
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.post('/v1/preflight', async (request, reply) => {
    const body = preflightBody.safeParse(request.body ?? {});
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const { workflowId, report } = await runPreflight(client, config, body.data.target, taskQueue);
    return reply.code(report.ok ? 200 : 424).send({ workflowId, ...report });
  });

  return app;
}
