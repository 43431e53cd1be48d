// The HTTP API: bearer-token auth, zod-validated bodies, errors with stable codes; built without listening so tests can inject().
import { timingSafeEqual } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { isGrpcServiceError } from '@temporalio/client';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config/schema';
import { formatIssues } from '../config/load';
import { VaultpamBackupError, type ErrorCode } from '../errors/catalogue';
import { listBackups } from '../catalog/catalog';
import { backupWorkflowId, startBackup } from '../operations/backup';
import { runPreflight } from '../operations/preflight';
import { readBackupProgress } from '../operations/progress';
import { confirmRestore, describeRestore, parseScope, restoreReport, startDrill, startRestore } from '../operations/restore';
import { requireWorker } from '../operations/worker-presence';
import { runKeyRotation } from '../operations/rotate-keys';
import { runVerify } from '../operations/verify';
import { parseSince, runAuditCheck } from '../operations/audit';
import { checkStatus, parseReadDataSubset, startCheck } from '../operations/check';
import { createDependencies } from '../runtime/dependencies';
import type { BackupLocation } from '../storage';
import { createCatalogMetrics } from '../metrics/catalog-metrics';

export interface ApiOptions {
  config: Config;
  client: Client;
  /** The bearer token callers present; undefined disables auth (only for a loopback-bound API). */
  token: string | undefined;
  /** Task queue the workflows run on. @default config.temporal.taskQueue */
  taskQueue?: string;
  logger?: boolean;
  /** Backup locations for catalog reads; default: built from the configuration. */
  locations?: BackupLocation[];
  /** The clock the metrics measure ages by. @default the dependencies' now() */
  now?: () => Date;
  /** How long one reading of the locations serves /metrics scrapes. @default 30000 */
  metricsCacheMs?: number;
}

const preflightBody = z.object({ target: z.enum(['production', 'staging']).default('production'), allowNoBackup: z.boolean().default(false) }).strict();
const backupBody = z
  .object({
    reason: z.string().min(1).max(500).optional(),
    requestedBy: z.string().min(1).max(200).optional(),
    deep: z.boolean().default(false),
    tags: z.array(z.string().min(1).max(64)).max(20).optional(),
  })
  .strict();
const verifyBody = z.object({ deep: z.boolean().default(false) }).strict();
const restoreBody = z
  .object({
    backupId: z.string().regex(/^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$/, 'a backup id like 20261127T020000Z-1a2b3c').optional(),
    at: z.iso.datetime({ offset: true }).optional(),
    scope: z.string().default('full'),
    target: z.enum(['production', 'staging']).default('production'),
    reason: z.string().min(1).max(500).optional(),
    requestedBy: z.string().min(1).max(200).optional(),
    confirmed: z.boolean().default(false),
    acceptUnrecoverable: z.union([z.string().regex(/^[0-9a-f]{64}$/, 'the 64-hex digest of the recordings found nowhere'), z.number().int().nonnegative()]).optional(),
  })
  .strict()
  .refine((b) => !b.backupId !== !b.at, { message: 'give either backupId or at, not both', path: ['backupId'] });
const confirmBody = z
  .object({
    backupId: z.string().min(1),
    lossReportDigest: z.string().regex(/^[0-9a-f]{64}$/, 'the 64-hex digest from the restore report'),
    confirmedBy: z.string().min(1).max(200).optional(),
    acceptUnrecoverable: z.union([z.string().regex(/^[0-9a-f]{64}$/, 'the 64-hex digest of the recordings found nowhere'), z.number().int().nonnegative()]).optional(),
  })
  .strict();

const checkBody = z
  .object({
    readData: z.boolean().default(false),
    readDataSubset: z.string().regex(/^[0-9]{1,6}\/[0-9]{1,6}$/, 'n/m, e.g. "1/7"').optional(),
    repair: z.boolean().default(false),
    requestedBy: z.string().min(1).max(200).optional(),
  })
  .strict()
  .refine((b) => !(b.readData && b.readDataSubset), { message: 'give readData or readDataSubset, not both', path: ['readDataSubset'] });

const bodies = { check: () => checkBody, preflight: () => preflightBody, backup: () => backupBody, verify: () => verifyBody, restore: () => restoreBody, confirm: () => confirmBody };

function openApiDocument() {
  const json = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  const body = (schema: z.ZodType) => ({ required: true, content: { 'application/json': { schema: json(schema) } } });
  const error = { description: 'error', content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } } } } };
  const op = (summary: string, extra: Record<string, unknown> = {}) => ({ summary, security: [{ bearer: [] }], responses: { '400': error, '401': error }, ...extra });
  return {
    openapi: '3.1.0',
    info: { title: 'vaultpam-backup', version: '0.1.0', description: 'Back up and restore VaultPAM deployments with durable Temporal workflows' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/healthz': { get: { summary: 'liveness', responses: { '200': { description: 'serving' } } } },
      '/metrics': { get: op('Prometheus metrics: recovery point per location, newest backup, last drill, last check') },
      '/v1/preflight': { post: op('run the preflight checks', { requestBody: body(bodies.preflight()) }) },
      '/v1/backups': { post: op('start a backup (409 when one runs)', { requestBody: body(bodies.backup()) }), get: op('the catalog of committed backups') },
      '/v1/backups/status': { get: op('progress of the running or last backup') },
      '/v1/backups/{backupId}/verify': { post: op('verify a backup at every location', { requestBody: body(bodies.verify()) }) },
      '/v1/restores': { post: op('start a restore (it waits for confirmation unless confirmed)', { requestBody: body(bodies.restore()) }) },
      '/v1/restores/{workflowId}': { get: op('the report of a restore: loss report, digest, step, verification, RTO, rollback') },
      '/v1/restores/{workflowId}/confirm': { post: op('confirm a restore with the backup id and the loss report digest', { requestBody: body(bodies.confirm()) }) },
      '/v1/restore-drills': { post: op('start a restore drill into staging') },
      '/v1/key-rotations': { post: op('rewrap every data key under encryption.activeKeyId, under the deployment lock (409 while locked); waits for the end') },
      '/v1/checks': { post: op('start a repository check (409 when one runs)', { requestBody: body(bodies.check()) }) },
      '/v1/checks/{workflowId}': { get: op('the state of a check, with its report once finished') },
      '/v1/audit': { get: op('the audit trail and its check (query: location, since); 409 when it is not intact, naming each problem') },
    },
  };
}

/** gRPC status codes Temporal answers with (the ones mapped to a 4xx). */
const grpcStatus = { INVALID_ARGUMENT: 3, NOT_FOUND: 5 } as const;

/** The HTTP status of each catalogued error: the caller's mistakes are 4xx, a dependency's failure 502/503. */
function statusOf(code: ErrorCode): number {
  switch (code) {
    case 'VPB_ERR_INPUT_INVALID':
      return 400;
    case 'VPB_ERR_NOT_FOUND':
      return 404;
    case 'VPB_ERR_BACKUP_RUNNING':
    case 'VPB_ERR_DEPLOYMENT_LOCKED':
    case 'VPB_ERR_CHECK_RUNNING':
      return 409;
    case 'VPB_ERR_STEP_FAILED':
      return 422;
    case 'VPB_ERR_NO_WORKER':
      return 503;
    default:
      return 502;
  }
}

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
  let cachedLocations: BackupLocation[] | undefined;
  let dependencies: ReturnType<typeof createDependencies> | undefined;
  const deps = () => (dependencies ??= createDependencies(config));
  const locations = () => (cachedLocations ??= options.locations ?? deps().locations());
  const metrics = createCatalogMetrics({
    deployment: config.deployment.name,
    ...(config.staging ? { stagingDeployment: config.staging.name } : {}),
    locations,
    now: options.now ?? (() => deps().now()),
    client,
    ...(options.metricsCacheMs !== undefined ? { cacheMs: options.metricsCacheMs } : {}),
  });
  const app = Fastify({
    logger: options.logger ? { redact: ['req.headers.authorization'] } : false,
    bodyLimit: 64 * 1024,
    // A URL the router cannot decode (a malformed %-escape) answers in the same error shape as everything else.
    frameworkErrors: (error, _request, reply) => {
      void sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', `${error.message}: percent-encode the path`);
    },
  });

  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz' || request.url === '/openapi.json' || options.token === undefined) return;
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!tokenMatches(given, options.token)) {
      return sendError(reply, 401, 'VPB_ERR_UNAUTHORIZED', 'missing or wrong bearer token: send "Authorization: Bearer <api token>"');
    }
  });

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof VaultpamBackupError) return sendError(reply, statusOf(error.code), error.code, error.message);
    if (error instanceof WorkflowNotFoundError) return sendError(reply, 404, 'VPB_ERR_NOT_FOUND', `workflow ${error.workflowId} not found in namespace ${client.options.namespace}`);
    // Temporal's own refusals of what was asked (an id it cannot find or parse) are the caller's, not the server's.
    if (isGrpcServiceError(error) && (error.code === grpcStatus.NOT_FOUND || error.code === grpcStatus.INVALID_ARGUMENT)) {
      const notFound = error.code === grpcStatus.NOT_FOUND;
      return sendError(reply, notFound ? 404 : 400, notFound ? 'VPB_ERR_NOT_FOUND' : 'VPB_ERR_INPUT_INVALID', `Temporal answered: ${error.details}`);
    }
    const fastifyError = error as { statusCode?: number; code?: string; message: string };
    if (fastifyError.statusCode && fastifyError.statusCode < 500) {
      return sendError(reply, fastifyError.statusCode, 'VPB_ERR_INPUT_INVALID', fastifyError.message);
    }
    reply.log.error(error);
    return sendError(reply, 500, 'VPB_ERR_INTERNAL', 'internal error; see the API server log');
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'VPB_ERR_NOT_FOUND', `no route ${request.method} ${request.url.slice(0, 200)}; the routes are listed at /openapi.json`));

  app.get('/healthz', async () => ({ status: 'ok' }));

  // Prometheus exposition: recovery point per location, newest backup, last drill and check (docs/alerts.yml).
  app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  // The API described from the same zod schemas that validate its bodies, so the two cannot drift apart.
  app.get('/openapi.json', async () => openApiDocument());

  app.post('/v1/preflight', async (request, reply) => {
    const body = preflightBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const { workflowId, runId, report } = await runPreflight(client, config, body.data.target, taskQueue, { allowNoBackup: body.data.allowNoBackup });
    return reply.code(report.ok ? 200 : 424).send({ workflowId, runId, ...report });
  });

  app.post('/v1/backups', async (request, reply) => {
    const body = backupBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const handle = await startBackup(client, config, {
      ...body.data,
      reason: body.data.reason ?? 'requested through the API',
      requestedBy: body.data.requestedBy ?? 'api',
      taskQueue,
    });
    return reply.code(202).send({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, status: '/v1/backups/status' });
  });

  app.get('/v1/backups/status', async () => readBackupProgress(client, client.workflow.getHandle(backupWorkflowId(config.deployment.name))));

  app.get('/v1/backups', async () => {
    const entries = await listBackups(locations(), config.deployment.name);
    return { backups: entries.map((e) => ({ backupId: e.backupId, locations: e.locations, problems: e.problems, manifest: e.manifest })) };
  });

  // The audit trail and its check, read from the locations: 200 when intact, 409 naming each problem otherwise.
  app.get<{ Querystring: { location?: string; since?: string } }>('/v1/audit', async (request, reply) => {
    const { location, since } = request.query;
    const report = await runAuditCheck(config, { ...(location ? { location } : {}), ...(since ? { since: parseSince(since) } : {}) }, { locations, keyRing: () => deps().keyRing() });
    return reply.code(report.ok ? 200 : 409).send(report);
  });

  app.post<{ Params: { backupId: string } }>('/v1/backups/:backupId/verify', async (request, reply) => {
    const body = verifyBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const report = await runVerify(client, config, request.params.backupId, body.data.deep, taskQueue);
    return reply.code(report.ok ? 200 : 422).send(report);
  });

  app.post('/v1/restores', async (request, reply) => {
    const body = restoreBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const { scope, ...rest } = body.data;
    const handle = await startRestore(client, config, { ...rest, scope: parseScope(scope), requestedBy: rest.requestedBy ?? 'api', taskQueue });
    return reply.code(202).send({ workflowId: handle.workflowId, report: `/v1/restores/${handle.workflowId}` });
  });

  app.get<{ Params: { workflowId: string } }>('/v1/restores/:workflowId', async (request) => restoreReport(client, request.params.workflowId));

  app.post<{ Params: { workflowId: string } }>('/v1/restores/:workflowId/confirm', async (request, reply) => {
    const body = confirmBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    // The confirmation is a Workflow Update, answered by a worker: without one it would never return.
    await describeRestore(client, request.params.workflowId);
    await requireWorker(client, taskQueue);
    return reply.send(await confirmRestore(client, request.params.workflowId, { ...body.data, confirmedBy: body.data.confirmedBy ?? 'api' }));
  });

  app.post('/v1/key-rotations', async (_request, reply) => {
    const result = await runKeyRotation(client, config, taskQueue);
    return reply.code(200).send(result);
  });

  app.post('/v1/restore-drills', async (_request, reply) => {
    const handle = await startDrill(client, config, taskQueue);
    return reply.code(202).send({ workflowId: handle.workflowId });
  });

  app.post('/v1/checks', async (request, reply) => {
    const body = checkBody.safeParse(request.body ?? {});
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const readData = body.data.readData ? ('all' as const) : body.data.readDataSubset ? parseReadDataSubset(body.data.readDataSubset, 'readDataSubset') : undefined;
    const handle = await startCheck(client, config, { ...(readData ? { readData } : {}), repair: body.data.repair, requestedBy: body.data.requestedBy ?? 'api', taskQueue });
    return reply.code(202).send({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, report: `/v1/checks/${handle.workflowId}` });
  });

  app.get<{ Params: { workflowId: string } }>('/v1/checks/:workflowId', async (request) => checkStatus(client, request.params.workflowId));

  return app;
}
