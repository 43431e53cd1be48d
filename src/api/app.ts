// The HTTP API: a role per route for the authenticated caller, zod-validated bodies, errors with stable codes; built without listening so tests can inject().
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { isGrpcServiceError } from '@temporalio/client';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ApiAuthConfig, Config } from '../config/schema';
import { formatIssues } from '../config/load';
import { VaultpamBackupError, type ErrorCode } from '../errors/catalogue';
import { listBackups } from '../catalog/catalog';
import { backupWorkflowId, startBackup } from '../operations/backup';
import { runPreflight } from '../operations/preflight';
import { readBackupProgress } from '../operations/progress';
import { confirmRestore, describeRestore, parseScope, restoreReport, startDrill, startRestore } from '../operations/restore';
import { livePollers, requireWorker } from '../operations/worker-presence';
import { runKeyRotation } from '../operations/rotate-keys';
import { runVerify } from '../operations/verify';
import { parseSince, runAuditCheck } from '../operations/audit';
import { checkStatus, parseReadDataSubset, startCheck } from '../operations/check';
import { createDependencies } from '../runtime/dependencies';
import type { BackupLocation } from '../storage';
import { createCatalogMetrics } from '../metrics/catalog-metrics';
import { installAccessControl } from '../auth/access-control';
import { createAuthenticator, type Authenticator } from '../auth/authenticate';
import { principalOf, type Role } from '../auth/principal';

export interface ApiOptions {
  config: Config;
  client: Client;
  /** Who may call: default, built from config.api.auth (which must then be set). */
  authenticator?: Authenticator;
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

/** requestedBy and confirmedBy were body fields once: a body that still sends them learns why they are refused. */
function unknownFieldsMessage(keys: readonly string[]): string {
  return keys
    .map((key) =>
      key === 'requestedBy' || key === 'confirmedBy'
        ? `${key} is not accepted: identity comes from the credential (the API token or JWT), so remove ${key} from the body`
        : `unknown field ${JSON.stringify(key)}: remove it (the fields are listed at /openapi.json)`,
    )
    .join('; ');
}
const strictBody = { error: (issue: z.core.$ZodRawIssue) => (issue.code === 'unrecognized_keys' ? unknownFieldsMessage(issue.keys) : undefined) };

const preflightBody = z.strictObject({ target: z.enum(['production', 'staging']).default('production'), allowNoBackup: z.boolean().default(false) }, strictBody);
const backupBody = z.strictObject(
  {
    reason: z.string().min(1).max(500).optional(),
    deep: z.boolean().default(false),
    tags: z.array(z.string().min(1).max(64)).max(20).optional(),
  },
  strictBody,
);
const verifyBody = z.strictObject({ deep: z.boolean().default(false) }, strictBody);
const restoreBody = z
  .strictObject({
    backupId: z.string().regex(/^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$/, 'a backup id like 20261127T020000Z-1a2b3c').optional(),
    at: z.iso.datetime({ offset: true }).optional(),
    scope: z.string().default('full'),
    target: z.enum(['production', 'staging']).default('production'),
    reason: z.string().min(1).max(500).optional(),
    confirmed: z.boolean().default(false),
    acceptUnrecoverable: z.union([z.string().regex(/^[0-9a-f]{64}$/, 'the 64-hex digest of the recordings found nowhere'), z.number().int().nonnegative()]).optional(),
  }, strictBody)
  .refine((b) => !b.backupId !== !b.at, { message: 'give either backupId or at, not both', path: ['backupId'] });
const confirmBody = z.strictObject(
  {
    backupId: z.string().min(1),
    lossReportDigest: z.string().regex(/^[0-9a-f]{64}$/, 'the 64-hex digest from the restore report'),
    acceptUnrecoverable: z.union([z.string().regex(/^[0-9a-f]{64}$/, 'the 64-hex digest of the recordings found nowhere'), z.number().int().nonnegative()]).optional(),
    /** One approval standing for all required ones, when the worker allows break-glass: say why. */
    breakGlass: z.object({ reason: z.string().min(10, 'say why in at least 10 characters').max(500) }).strict().optional(),
  },
  strictBody,
);

const checkBody = z
  .strictObject(
    {
      readData: z.boolean().default(false),
      readDataSubset: z.string().regex(/^[0-9]{1,6}\/[0-9]{1,6}$/, 'n/m, e.g. "1/7"').optional(),
      repair: z.boolean().default(false),
    },
    strictBody,
  )
  .refine((b) => !(b.readData && b.readDataSubset), { message: 'give readData or readDataSubset, not both', path: ['readDataSubset'] });

const bodies = { check: () => checkBody, preflight: () => preflightBody, backup: () => backupBody, verify: () => verifyBody, restore: () => restoreBody, confirm: () => confirmBody };

/** The document, its roles read from the routes themselves (`roleOf`), so the two cannot drift apart either. */
function openApiDocument(roleOf: (method: string, url: string) => Role | undefined) {
  const json = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  const body = (schema: z.ZodType) => ({ required: true, content: { 'application/json': { schema: json(schema) } } });
  const error = { description: 'error', content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } } } } };
  const op = (method: string, path: string, summary: string, extra: Record<string, unknown> = {}) => {
    const role = roleOf(method, path.replace(/\{(\w+)\}/g, ':$1'));
    if (!role) throw new Error(`the OpenAPI document lists ${method} ${path}, which no route serves with a role`);
    return {
      summary: `${summary} (role: ${role})`,
      security: [{ bearer: [] }],
      responses: { '400': error, '401': { ...error, description: 'no credential, or one that is unknown, expired, revoked or invalid' }, '403': { ...error, description: `the caller lacks the role ${role}` } },
      ...extra,
    };
  };
  return {
    openapi: '3.1.0',
    info: { title: 'vaultpam-backup', version: '0.1.0', description: 'Back up and restore VaultPAM deployments with durable Temporal workflows' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token (vpb_<id>_<secret>, from `vaultpam-backup tokens create`) or a JWT from the configured identity provider' } } },
    paths: {
      '/healthz': { get: { summary: 'liveness', responses: { '200': { description: 'serving' } } } },
      '/metrics': { get: op('GET', '/metrics', 'Prometheus metrics: recovery point per location, newest backup, last drill, last check') },
      '/v1/preflight': { post: op('POST', '/v1/preflight', 'run the preflight checks', { requestBody: body(bodies.preflight()) }) },
      '/v1/backups': { post: op('POST', '/v1/backups', 'start a backup (409 when one runs)', { requestBody: body(bodies.backup()) }), get: op('GET', '/v1/backups', 'the catalog of committed backups') },
      '/v1/workers': { get: op('GET', '/v1/workers', 'whether a worker polls the task queue (the waiting commands stop when none does)') },
      '/v1/backups/status': { get: op('GET', '/v1/backups/status', 'progress of the running or last backup') },
      '/v1/backups/{backupId}/verify': { post: op('POST', '/v1/backups/{backupId}/verify', 'verify a backup at every location', { requestBody: body(bodies.verify()) }) },
      '/v1/restores': { post: op('POST', '/v1/restores', 'start a restore (it waits for confirmation unless confirmed)', { requestBody: body(bodies.restore()) }) },
      '/v1/restores/{workflowId}': { get: op('GET', '/v1/restores/{workflowId}', 'the report of a restore: loss report, digest, step, verification, RTO, rollback') },
      '/v1/restores/{workflowId}/confirm': { post: op('POST', '/v1/restores/{workflowId}/confirm', 'confirm a restore with the backup id and the loss report digest', { requestBody: body(bodies.confirm()) }) },
      '/v1/restore-drills': { post: op('POST', '/v1/restore-drills', 'start a restore drill into staging') },
      '/v1/key-rotations': { post: op('POST', '/v1/key-rotations', 'rewrap every data key under encryption.activeKeyId, under the deployment lock (409 while locked); waits for the end') },
      '/v1/checks': { post: op('POST', '/v1/checks', 'start a repository check (409 when one runs)', { requestBody: body(bodies.check()) }) },
      '/v1/checks/{workflowId}': { get: op('GET', '/v1/checks/{workflowId}', 'the state of a check, with its report once finished') },
      '/v1/audit': { get: op('GET', '/v1/audit', 'the audit trail and its check (query: location, since); 409 when it is not intact, naming each problem') },
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
    case 'VPB_ERR_UNAUTHORIZED':
      return 401;
    case 'VPB_ERR_FORBIDDEN':
      return 403;
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

/** The API's auth section; an API without one would not know who calls it. */
export function authConfigOf(config: Config): ApiAuthConfig {
  if (!config.api.auth) {
    throw new VaultpamBackupError(
      'VPB_ERR_CONFIG_INVALID',
      'api.auth is not set: set api.auth.tokensFile and create a token per person with `vaultpam-backup tokens create --principal <name> --roles <roles>` (or, on a loopback api.host only, api.auth.mode "development")',
    );
  }
  return config.api.auth;
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
    keyRing: () => deps().keyRing(),
    client,
    ...(options.metricsCacheMs !== undefined ? { cacheMs: options.metricsCacheMs } : {}),
  });
  const authenticator = options.authenticator ?? createAuthenticator(authConfigOf(config), { onReloadError: (err) => app.log.error({ err: err.message }, 'the API tokens file cannot be re-read: its tokens are refused until it is fixed') });
  const app = Fastify({
    logger: options.logger ? { redact: ['req.headers.authorization'] } : false,
    bodyLimit: 64 * 1024,
    // A URL the router cannot decode (a malformed %-escape) answers in the same error shape as everything else.
    frameworkErrors: (error, _request, reply) => {
      void sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', `${error.message}: percent-encode the path`);
    },
  });

  installAccessControl(app, authenticator);
  const routeRoles = new Map<string, Role>();
  app.addHook('onRoute', (route) => {
    const role = (route.config as { role?: Role } | undefined)?.role;
    if (role) for (const method of [route.method].flat()) routeRoles.set(`${method} ${route.url}`, role);
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

  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }));

  // Prometheus exposition: recovery point per location, newest backup, last drill and check (docs/alerts.yml).
  app.get('/metrics', { config: { role: 'viewer' } }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  // The API described from the same zod schemas that validate its bodies, so the two cannot drift apart.
  app.get('/openapi.json', { config: { public: true } }, async () => openApiDocument((method, url) => routeRoles.get(`${method} ${url}`)));

  app.post('/v1/preflight', { config: { role: 'operator' } }, async (request, reply) => {
    const body = preflightBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const { workflowId, runId, report } = await runPreflight(client, config, body.data.target, taskQueue, { allowNoBackup: body.data.allowNoBackup });
    return reply.code(report.ok ? 200 : 424).send({ workflowId, runId, ...report });
  });

  app.post('/v1/backups', { config: { role: 'operator' } }, async (request, reply) => {
    const body = backupBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const handle = await startBackup(client, config, {
      ...body.data,
      reason: body.data.reason ?? 'requested through the API',
      requestedBy: principalOf(request).id,
      taskQueue,
    });
    return reply.code(202).send({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, status: '/v1/backups/status' });
  });

  // Whether a worker polls the task queue: the command line, waiting through this API, stops when none does.
  app.get('/v1/workers', { config: { role: 'viewer' } }, async () => {
    const pollers = await livePollers(client, taskQueue);
    return { taskQueue, namespace: client.options.namespace, polling: pollers.length > 0, pollers };
  });

  app.get('/v1/backups/status', { config: { role: 'viewer' } }, async () => {
    const handle = client.workflow.getHandle(backupWorkflowId(config.deployment.name));
    const progress = await readBackupProgress(client, handle);
    // A committed backup's result, so a client of the API (the command line's --api) prints what a direct run prints.
    return progress.workflowStatus === 'COMPLETED' ? { ...progress, result: await handle.result() } : progress;
  });

  app.get('/v1/backups', { config: { role: 'viewer' } }, async () => {
    const entries = await listBackups(locations(), config.deployment.name);
    return { backups: entries.map((e) => ({ backupId: e.backupId, locations: e.locations, problems: e.problems, manifest: e.manifest })) };
  });

  // The audit trail and its check, read from the locations: 200 when intact, 409 naming each problem otherwise.
  app.get<{ Querystring: { location?: string; since?: string } }>('/v1/audit', { config: { role: 'viewer' } }, async (request, reply) => {
    const { location, since } = request.query;
    const report = await runAuditCheck(config, { ...(location ? { location } : {}), ...(since ? { since: parseSince(since) } : {}) }, { locations, keyRing: () => deps().keyRing() });
    return reply.code(report.ok ? 200 : 409).send(report);
  });

  app.post<{ Params: { backupId: string } }>('/v1/backups/:backupId/verify', { config: { role: 'operator' } }, async (request, reply) => {
    const body = verifyBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const report = await runVerify(client, config, request.params.backupId, body.data.deep, taskQueue, { requestedBy: principalOf(request).id });
    return reply.code(report.ok ? 200 : 422).send(report);
  });

  app.post('/v1/restores', { config: { role: 'restorer' } }, async (request, reply) => {
    const body = restoreBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const { scope, ...rest } = body.data;
    const handle = await startRestore(client, config, { ...rest, scope: parseScope(scope), principal: principalOf(request), taskQueue });
    return reply.code(202).send({ workflowId: handle.workflowId, report: `/v1/restores/${handle.workflowId}` });
  });

  app.get<{ Params: { workflowId: string } }>('/v1/restores/:workflowId', { config: { role: 'viewer' } }, async (request) => restoreReport(client, request.params.workflowId));

  app.post<{ Params: { workflowId: string } }>('/v1/restores/:workflowId/confirm', { config: { role: 'approver' } }, async (request, reply) => {
    const body = confirmBody.safeParse(request.body === undefined ? {} : request.body);
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    // The confirmation is a Workflow Update, answered by a worker: without one it would never return.
    await describeRestore(client, request.params.workflowId);
    await requireWorker(client, taskQueue);
    return reply.send(await confirmRestore(client, config, request.params.workflowId, { ...body.data, principal: principalOf(request) }));
  });

  app.post('/v1/key-rotations', { config: { role: 'admin' } }, async (request, reply) => {
    const result = await runKeyRotation(client, config, taskQueue, principalOf(request).id);
    return reply.code(200).send(result);
  });

  app.post('/v1/restore-drills', { config: { role: 'operator' } }, async (_request, reply) => {
    const handle = await startDrill(client, config, taskQueue);
    return reply.code(202).send({ workflowId: handle.workflowId });
  });

  app.post('/v1/checks', { config: { role: 'operator' } }, async (request, reply) => {
    const body = checkBody.safeParse(request.body ?? {});
    if (!body.success) return sendError(reply, 400, 'VPB_ERR_INPUT_INVALID', formatIssues(body.error));
    const readData = body.data.readData ? ('all' as const) : body.data.readDataSubset ? parseReadDataSubset(body.data.readDataSubset, 'readDataSubset') : undefined;
    const handle = await startCheck(client, config, { ...(readData ? { readData } : {}), repair: body.data.repair, requestedBy: principalOf(request).id, taskQueue });
    return reply.code(202).send({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, report: `/v1/checks/${handle.workflowId}` });
  });

  app.get<{ Params: { workflowId: string } }>('/v1/checks/:workflowId', { config: { role: 'viewer' } }, async (request) => checkStatus(client, request.params.workflowId));

  return app;
}
