// The sandbox VaultPAM's admin API (fastify): the control-plane contract of DESIGN.md plus the small CRUD tests use.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type * as Minio from 'minio';
import type pg from 'pg';
import type { z } from 'zod';
import {
  auditEventSchema,
  connectorInventorySchema,
  createResourceSchema,
  idParamsSchema,
  launchSessionSchema,
  listResourcesQuerySchema,
  maintenanceRequestSchema,
  type ConnectorInventory,
  type Stats,
} from './admin-api-schemas';
import { ControlPlaneError, inMaintenance, notFound, unauthorized } from './control-plane-errors';
import { inTransaction } from './database';
import { MaintenanceMode } from './maintenance-mode';
import { recordingKey, renderRecording } from './recordings';
import type { SandboxConfig } from './sandbox-config';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without a bearer token. */
    public?: boolean;
  }
}

export interface ControlPlaneDeps {
  /** The deployment's database; owned by the caller (closed by it, not by the app). */
  db: pg.Pool;
  /** Client of the S3 store holding `config.s3.bucket`; owned by the caller. */
  recordings: Minio.Client;
  /** @default loaded from `config.stateDir` */
  maintenance?: MaintenanceMode;
  /** @default no logging */
  logger?: FastifyBaseLogger;
  /** @default () => new Date() */
  now?: () => Date;
  /**
   * How long enabling maintenance waits for writes already admitted to finish.
   * @default 10_000
   */
  drainTimeoutMs?: number;
  /**
   * Size of the recording a session launch uploads.
   * @default 4096
   */
  sessionRecordingBytes?: number;
}

/** Written as the actor of audit entries caused through this API. */
const API_ACTOR = 'admin-api';

const IMPORT_BODY_LIMIT = 64 * 1024 * 1024;

interface ResourceRow {
  id: string;
  organisation_id: string;
  name: string;
  kind: string;
  address: string;
  created_at: Date;
  updated_at: Date;
}

const resourceColumns = 'id, organisation_id, name, kind, address, created_at, updated_at';

function resourceView(row: ResourceRow) {
  return {
    id: row.id,
    organisationId: row.organisation_id,
    name: row.name,
    kind: row.kind,
    address: row.address,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${[where, ...issue.path.map(String)].join('.')}: ${issue.message}`);
  throw new ControlPlaneError('INVALID_REQUEST', problems.join('; '));
}

function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : '';
  if (typeof code === 'string') {
    // Connection refused/reset, database renamed or dropped (3D000), server shutting down (57P0x), class 08.
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '3D000', '57P01', '57P02', '57P03'].includes(code)) return true;
    if (code.startsWith('08')) return true;
  }
  return /timeout exceeded when trying to connect|Connection terminated/i.test(message);
}

/** Builds the admin API; `app.listen()` it or drive it with `app.inject()`. */
export async function buildControlPlane(config: SandboxConfig, deps: ControlPlaneDeps): Promise<FastifyInstance> {
  const { db, recordings } = deps;
  const maintenance = deps.maintenance ?? (await MaintenanceMode.load(config.stateDir));
  const now = deps.now ?? (() => new Date());
  const drainTimeoutMs = deps.drainTimeoutMs ?? 10_000;
  const sessionRecordingBytes = deps.sessionRecordingBytes ?? 4096;
  const bucket = config.s3.bucket;
  const expectedToken = tokenDigest(config.token);

  const app: FastifyInstance = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    // Close idle keep-alive connections at once on stop; requests in flight are allowed to finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  // An empty body with a JSON content type means "no body" (e.g. POST /credentials/:id/rotate from curl).
  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    void defaultJsonParser(request, text, done);
  });

  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.public === true) return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1] || !timingSafeEqual(tokenDigest(match[1]), expectedToken)) throw unauthorized();
  });

  app.setNotFoundHandler(async (request) => {
    throw new ControlPlaneError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`);
  });

  app.setErrorHandler(async (error: unknown, request, reply) => {
    let failure: ControlPlaneError;
    if (error instanceof ControlPlaneError) {
      failure = error;
    } else if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable');
      failure = new ControlPlaneError('DATABASE_UNAVAILABLE', 'the database is unavailable; retry when the deployment is serving again');
    } else {
      const status = (error as { statusCode?: unknown }).statusCode;
      const message = error instanceof Error ? error.message : String(error);
      if (status === 413) failure = new ControlPlaneError('PAYLOAD_TOO_LARGE', message);
      else if (status === 415) failure = new ControlPlaneError('UNSUPPORTED_MEDIA_TYPE', `${message}; send JSON with content-type application/json`);
      else if (typeof status === 'number' && status >= 400 && status < 500) failure = new ControlPlaneError('INVALID_REQUEST', message);
      else {
        request.log.error({ err: error }, 'request failed');
        failure = new ControlPlaneError('INTERNAL', 'internal error; see the sandbox log');
      }
    }
    return reply.code(failure.statusCode).send(failure.toBody());
  });

  /** Wraps a write: refused in maintenance mode, and counted so enabling maintenance can wait for it. */
  const write =
    <T>(handler: (request: FastifyRequest, reply: FastifyReply) => Promise<T>) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<T> => {
      if (!maintenance.tryEnterWrite()) throw inMaintenance(maintenance.state.reason);
      try {
        return await handler(request, reply);
      } finally {
        maintenance.leaveWrite();
      }
    };

  const audit = (client: pg.PoolClient, action: string, resourceId: string | null, details: Record<string, unknown>, actor = API_ACTOR) =>
    client.query('INSERT INTO audit_log (actor, action, resource_id, details) VALUES ($1, $2, $3, $4)', [actor, action, resourceId, JSON.stringify(details)]);

  // ------------------------------------------------------------------ health and maintenance

  app.get('/healthz', { config: { public: true } }, async () => {
    await db.query('SELECT 1');
    return { status: 'ok', maintenance: maintenance.enabled };
  });

  app.get('/admin/maintenance', async () => maintenance.state);

  // Toggles are logged, not audited in the database: they bracket every backup, and an audit row written
  // after the dump would make each backup look lossy the moment it is taken.
  app.post('/admin/maintenance', async (request, reply) => {
    const body = parse(maintenanceRequestSchema, request.body, 'body');
    const { state, drained } = await maintenance.set(body.enabled, body.reason ?? null, now(), drainTimeoutMs);
    request.log.info({ maintenance: state, drained }, body.enabled ? 'maintenance mode enabled' : 'maintenance mode disabled');
    if (!drained) {
      throw new ControlPlaneError(
        'WRITES_NOT_DRAINED',
        `maintenance mode is on but ${maintenance.writesInFlight} write(s) admitted before it were still running after ${drainTimeoutMs} ms; retry the same request`,
      );
    }
    return reply.code(200).send(state);
  });

  // ------------------------------------------------------------------ connectors

  app.get('/admin/connectors/export', async (): Promise<ConnectorInventory> => {
    // Timestamps as text with microseconds: a JS Date keeps milliseconds only, and an import of this export must
    // give back exactly the rows it came from.
    const { rows } = await db.query<{ id: string; name: string; kind: string; config: Record<string, unknown>; enabled: boolean; created_at: string; updated_at: string }>(
      `SELECT id, name, kind, config, enabled,
              to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
              to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at
       FROM connectors ORDER BY name, id`,
    );
    return {
      exportedAt: now().toISOString(),
      connectors: rows.map((row) => ({
        id: row.id,
        name: row.name,
        kind: row.kind,
        config: row.config,
        enabled: row.enabled,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
      })),
    };
  });

  // Not audited in the database: a restore re-imports the inventory right after restoring the database and
  // then checks the audit-log count against the backup's manifest.
  app.post(
    '/admin/connectors/import',
    { bodyLimit: IMPORT_BODY_LIMIT },
    write(async (request) => {
      const inventory = parse(connectorInventorySchema, request.body, 'body');
      for (const key of ['id', 'name'] as const) {
        const seen = new Set<string>();
        for (const connector of inventory.connectors) {
          if (seen.has(connector[key])) {
            throw new ControlPlaneError('DUPLICATE_CONNECTOR', `body.connectors: two connectors have ${key} ${JSON.stringify(connector[key])}; ${key}s must be unique`);
          }
          seen.add(connector[key]);
        }
      }
      const imported = await inTransaction(db, async (client) => {
        await client.query('DELETE FROM connectors');
        const result = await client.query(
          `INSERT INTO connectors (id, name, kind, config, enabled, created_at, updated_at)
           SELECT c.id, c.name, c.kind, c.config, c.enabled, coalesce(c."createdAt", now()), coalesce(c."updatedAt", now())
           FROM jsonb_to_recordset($1::jsonb)
             AS c(id text, name text, kind text, config jsonb, enabled boolean, "createdAt" timestamptz, "updatedAt" timestamptz)`,
          [JSON.stringify(inventory.connectors)],
        );
        return result.rowCount ?? 0;
      });
      request.log.info({ imported, exportedAt: inventory.exportedAt }, 'connector inventory imported');
      return { imported };
    }),
  );

  // ------------------------------------------------------------------ stats

  app.get('/admin/stats', async (): Promise<Stats> => {
    const { rows } = await db.query<Record<keyof Stats, string>>(
      `SELECT (SELECT count(*) FROM resources) AS resources, (SELECT count(*) FROM safes) AS safes,
              (SELECT count(*) FROM audit_log) AS audit_log, (SELECT count(*) FROM credentials) AS credentials,
              (SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM connectors) AS connectors`,
    );
    const row = rows[0];
    if (!row) throw new Error('count query returned no row');
    return {
      resources: Number(row.resources),
      safes: Number(row.safes),
      audit_log: Number(row.audit_log),
      credentials: Number(row.credentials),
      sessions: Number(row.sessions),
      connectors: Number(row.connectors),
    };
  });

  // ------------------------------------------------------------------ audit log

  // A line from the backup orchestrator (a restore, say) in this deployment's own audit log. Idempotent: the same
  // actor, action and details already logged answer that row, so a retried request leaves one line.
  app.post(
    '/admin/audit-events',
    write(async (request, reply) => {
      const body = parse(auditEventSchema, request.body, 'body');
      const id = await inTransaction(db, async (client) => {
        // Serialises identical requests, so two retries racing each other still leave one row.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${body.actor}\n${body.action}\n${JSON.stringify(body.details)}`]);
        const existing = await client.query<{ id: string }>('SELECT id FROM audit_log WHERE actor = $1 AND action = $2 AND details = $3::jsonb ORDER BY id LIMIT 1', [body.actor, body.action, JSON.stringify(body.details)]);
        if (existing.rows[0]) return existing.rows[0].id;
        const inserted = await client.query<{ id: string }>('INSERT INTO audit_log (actor, action, resource_id, details) VALUES ($1, $2, NULL, $3) RETURNING id', [body.actor, body.action, JSON.stringify(body.details)]);
        return inserted.rows[0]!.id;
      });
      return reply.code(201).send({ id: String(id) });
    }),
  );

  // ------------------------------------------------------------------ sessions

  app.post(
    '/sessions',
    write(async (request, reply) => {
      const body = parse(launchSessionSchema, request.body, 'body');
      const sessionId = randomUUID();
      const startedAt = now();
      const key = recordingKey(sessionId, startedAt);
      let uploaded = false;
      try {
        await inTransaction(db, async (client) => {
          // KEY SHARE: a concurrent DELETE of the resource waits for this launch instead of racing it.
          const resource = await client.query('SELECT id FROM resources WHERE id = $1 FOR KEY SHARE', [body.resourceId]);
          if (resource.rowCount === 0) throw notFound('RESOURCE_NOT_FOUND', body.resourceId);
          let actor = API_ACTOR;
          if (body.userId !== undefined) {
            const user = await client.query<{ email: string }>('SELECT email FROM users WHERE id = $1 FOR KEY SHARE', [body.userId]);
            if (!user.rows[0]) throw notFound('USER_NOT_FOUND', body.userId);
            actor = user.rows[0].email;
          }
          await client.query('INSERT INTO sessions (id, resource_id, user_id, started_at, recording_key) VALUES ($1, $2, $3, $4, $5)', [
            sessionId,
            body.resourceId,
            body.userId ?? null,
            startedAt,
            key,
          ]);
          await audit(client, 'session.launch', body.resourceId, { sessionId, recordingKey: key, userId: body.userId ?? null }, actor);
          // Uploaded inside the transaction: a failed upload leaves no session row pointing at nothing.
          const content = renderRecording(sessionId, startedAt, sessionRecordingBytes);
          try {
            await recordings.putObject(bucket, key, content, content.length, { 'Content-Type': 'application/x-asciicast' });
          } catch (error) {
            request.log.warn({ err: error, bucket, key }, 'recording upload failed');
            throw new ControlPlaneError('RECORDING_STORE_UNAVAILABLE', `could not store the recording in bucket ${bucket}; the session was not launched`);
          }
          uploaded = true;
        });
      } catch (error) {
        if (uploaded) await recordings.removeObject(bucket, key).catch(() => undefined);
        throw error;
      }
      return reply.code(201).send({ sessionId, recordingKey: key });
    }),
  );

  // ------------------------------------------------------------------ resources and credentials

  app.get('/resources', async (request) => {
    const query = parse(listResourcesQuerySchema, request.query, 'query');
    const [page, total] = await Promise.all([
      db.query<ResourceRow>(`SELECT ${resourceColumns} FROM resources ORDER BY created_at, id LIMIT $1 OFFSET $2`, [query.limit, query.offset]),
      db.query<{ count: string }>('SELECT count(*) FROM resources'),
    ]);
    return { total: Number(total.rows[0]?.count ?? 0), limit: query.limit, offset: query.offset, resources: page.rows.map(resourceView) };
  });

  const resourceDetail = async (client: pg.Pool | pg.PoolClient, id: string) => {
    const resource = await client.query<ResourceRow>(`SELECT ${resourceColumns} FROM resources WHERE id = $1`, [id]);
    const row = resource.rows[0];
    if (!row) throw notFound('RESOURCE_NOT_FOUND', id);
    const safes = await client.query<{ id: string; name: string; credentials: Array<{ id: string; username: string; version: number; rotatedAt: string | null }> }>(
      `SELECT s.id, s.name,
              coalesce(jsonb_agg(jsonb_build_object('id', c.id, 'username', c.username, 'version', c.version, 'rotatedAt', c.rotated_at) ORDER BY c.id)
                       FILTER (WHERE c.id IS NOT NULL), '[]'::jsonb) AS credentials
       FROM safes s LEFT JOIN credentials c ON c.safe_id = s.id
       WHERE s.resource_id = $1 GROUP BY s.id, s.name ORDER BY s.name, s.id`,
      [id],
    );
    // Secrets never leave the database through this API.
    return { ...resourceView(row), safes: safes.rows };
  };

  app.get('/resources/:id', async (request) => {
    const { id } = parse(idParamsSchema, request.params, 'params');
    return resourceDetail(db, id);
  });

  app.post(
    '/resources',
    write(async (request, reply) => {
      const body = parse(createResourceSchema, request.body, 'body');
      const created = await inTransaction(db, async (client) => {
        let organisationId = body.organisationId;
        if (organisationId === undefined) {
          const oldest = await client.query<{ id: string }>('SELECT id FROM organisations ORDER BY created_at, id LIMIT 1');
          organisationId = oldest.rows[0]?.id;
          if (organisationId === undefined) {
            throw new ControlPlaneError('NO_ORGANISATION', 'the deployment has no organisation: seed one (sandbox/seed.ts) or pass organisationId');
          }
        } else {
          const organisation = await client.query('SELECT 1 FROM organisations WHERE id = $1 FOR KEY SHARE', [organisationId]);
          if (organisation.rowCount === 0) throw notFound('ORGANISATION_NOT_FOUND', organisationId);
        }
        const inserted = await client.query<{ id: string }>('INSERT INTO resources (organisation_id, name, kind, address) VALUES ($1, $2, $3, $4) RETURNING id', [
          organisationId,
          body.name,
          body.kind,
          body.address,
        ]);
        const resourceId = inserted.rows[0]?.id;
        if (resourceId === undefined) throw new Error('INSERT ... RETURNING gave no row');
        let credentials = 0;
        for (const safe of body.safes) {
          const safeRow = await client.query<{ id: string }>('INSERT INTO safes (resource_id, name) VALUES ($1, $2) RETURNING id', [resourceId, safe.name]);
          for (const credential of safe.credentials) {
            await client.query('INSERT INTO credentials (safe_id, username, secret) VALUES ($1, $2, $3)', [
              safeRow.rows[0]?.id,
              credential.username,
              credential.secret ?? randomBytes(24).toString('base64url'),
            ]);
            credentials += 1;
          }
        }
        await audit(client, 'resource.create', resourceId, { name: body.name, kind: body.kind, safes: body.safes.length, credentials });
        return resourceDetail(client, resourceId);
      });
      return reply.code(201).send(created);
    }),
  );

  app.delete(
    '/resources/:id',
    write(async (request) => {
      const { id } = parse(idParamsSchema, request.params, 'params');
      return inTransaction(db, async (client) => {
        const resource = await client.query<{ name: string; safes: string; credentials: string }>(
          `SELECT r.name,
                  (SELECT count(*) FROM safes s WHERE s.resource_id = r.id) AS safes,
                  (SELECT count(*) FROM credentials c JOIN safes s ON s.id = c.safe_id WHERE s.resource_id = r.id) AS credentials
           FROM resources r WHERE r.id = $1 FOR UPDATE OF r`,
          [id],
        );
        const row = resource.rows[0];
        if (!row) throw notFound('RESOURCE_NOT_FOUND', id);
        await client.query('DELETE FROM resources WHERE id = $1', [id]);
        const deleted = { id, safes: Number(row.safes), credentials: Number(row.credentials) };
        await audit(client, 'resource.delete', id, { name: row.name, safes: deleted.safes, credentials: deleted.credentials });
        return { deleted };
      });
    }),
  );

  app.post(
    '/credentials/:id/rotate',
    write(async (request) => {
      const { id } = parse(idParamsSchema, request.params, 'params');
      return inTransaction(db, async (client) => {
        const rotated = await client.query<{ id: string; version: number; rotated_at: Date; resource_id: string }>(
          `UPDATE credentials c SET secret = $2, version = c.version + 1, rotated_at = now()
           FROM safes s WHERE c.id = $1 AND s.id = c.safe_id
           RETURNING c.id, c.version, c.rotated_at, s.resource_id`,
          [id, randomBytes(24).toString('base64url')],
        );
        const row = rotated.rows[0];
        if (!row) throw notFound('CREDENTIAL_NOT_FOUND', id);
        await audit(client, 'credential.rotate', row.resource_id, { credentialId: row.id, version: row.version });
        return { id: row.id, version: row.version, rotatedAt: row.rotated_at.toISOString() };
      });
    }),
  );

  return app;
}
