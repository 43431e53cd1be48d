// The one schema of the orchestrator's configuration; every type below is inferred from it.
import { z } from 'zod';
import { ROLES } from '../auth/principal';
import { DEFAULT_ACTIVITY_TIMEOUTS, parseDuration } from './activity-timeouts';

/**
 * A secret is never written in the configuration itself: it names where the worker finds it.
 * `{ env: "NAME" }` reads an environment variable, `{ file: "/path" }` reads a file (trailing newline trimmed).
 */
export const secretRefSchema = z.union([
  z.object({ env: z.string().min(1, 'name the environment variable that holds the secret') }).strict(),
  z.object({ file: z.string().min(1, 'give the path of the file that holds the secret') }).strict(),
], { error: 'name where the value is, as {"env": "NAME"} or {"file": "/path"}; never write the value itself' });
export type SecretRef = z.infer<typeof secretRefSchema>;

const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'use lower-case letters, digits and dashes (at most 63), starting with a letter or digit');

const port = z.number().int().min(1).max(65535);

export const s3EndpointSchema = z.object({
  endPoint: z.string().min(1).default('127.0.0.1'),
  port: port.default(7070),
  useSSL: z.boolean().default(false),
  region: z.string().default('us-east-1'),
  accessKey: z.string().min(1),
  secretKey: secretRefSchema,
});
export type S3Endpoint = z.infer<typeof s3EndpointSchema>;

export const postgresSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: port.default(55432),
  database: z.string().min(1),
  user: z.string().min(1),
  password: secretRefSchema.optional(),
  /** Directory holding pg_dump / pg_restore; default: found on PATH or under /usr/lib/postgresql/<major>/bin. */
  binDir: z.string().optional(),
});
export type PostgresConfig = z.infer<typeof postgresSchema>;

/** A command run to stop or start the control-plane services (argv, no shell). */
const commandSchema = z.array(z.string().min(1)).min(1, 'give the program and its arguments as a list');

export const controlPlaneSchema = z.object({
  url: z.string().url('give the admin API base URL, e.g. http://127.0.0.1:8480'),
  token: secretRefSchema,
  stopCommand: commandSchema,
  startCommand: commandSchema,
  /** A resource the smoke test launches a session against. */
  smokeTestResourceId: z.string().min(1).optional(),
});
export type ControlPlaneConfig = z.infer<typeof controlPlaneSchema>;

/** Point-in-time protection of the deployment's cluster: physical base backups plus WAL streamed over a replication slot. */
export const pointInTimeSchema = z.object({
  /** @default false */
  enabled: z.boolean().default(false),
  /** The physical replication slot the stream holds on the cluster. @default "vaultpam_backup" */
  slot: z
    .string()
    .regex(/^[a-z0-9_]{1,63}$/, 'a replication slot name is 1-63 lower-case letters, digits or "_", e.g. vaultpam_backup')
    .default('vaultpam_backup'),
  /** How often the segment being written is uploaded as a partial: the recovery point stays about this long. @default 30 */
  partialUploadSeconds: z.number().positive().max(60, 'upload partial segments at least once a minute (at most 60), or the recovery point exceeds a minute').default(30),
  /** How long one run of the WAL stream lasts before it returns (the protection workflow starts the next). @default 300 */
  sliceSeconds: z.number().int().min(10, 'a slice of at least 10 seconds').max(3600, 'a slice of at most 3600 seconds, so a worker crash is noticed within the hour').default(300),
  /** A new base backup is taken when the newest is this old. @default 24 */
  baseBackupEveryHours: z.number().positive('give the hours between base backups, e.g. 24').default(24),
}).strict();
export type PointInTimeConfig = z.infer<typeof pointInTimeSchema>;

/** One VaultPAM deployment: its database, its recordings bucket, its control plane. */
export const deploymentSchema = z.object({
  name: slug,
  postgres: postgresSchema,
  recordings: s3EndpointSchema.extend({
    bucket: z.string().min(3),
    /** Reads from the recordings bucket at most this fast (bytes per second), to stay gentle on production. */
    maxBytesPerSecond: z.number().int().positive().optional(),
  }),
  controlPlane: controlPlaneSchema,
  pointInTime: pointInTimeSchema.optional(),
});
export type DeploymentConfig = z.infer<typeof deploymentSchema>;

const locationBase = {
  name: slug,
  /** Geographic label; a complete backup needs locations in at least two distinct regions. */
  region: z.string().min(1),
  prefix: z.string().default('vaultpam'),
  /** Reads and writes of this location, together, at most this fast (bytes per second). */
  maxBytesPerSecond: z.number().int().positive().optional(),
};

export const locationSchema = z.discriminatedUnion('kind', [
  z.object({ ...locationBase, kind: z.literal('s3'), bucket: z.string().min(3), ...s3EndpointSchema.shape }),
  z.object({ ...locationBase, kind: z.literal('filesystem'), path: z.string().min(1) }),
]);
export type LocationConfig = z.infer<typeof locationSchema>;

/**
 * A duration: milliseconds as a number, or text such as "30 seconds", "30s", "2 minutes", "12h". Parsed to
 * milliseconds, so a parsed configuration parses again to the same values.
 */
function duration(minMs: number, defaultMs: number) {
  return z
    .union([z.number(), z.string()])
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a duration: write milliseconds as a number, or text such as "30 seconds", "2 minutes", "12h"` });
        return z.NEVER;
      }
      if (ms < minMs) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is too short: use at least ${minMs} ms` });
        return z.NEVER;
      }
      return Math.round(ms);
    })
    .default(defaultMs);
}

const attempts = (defaultAttempts: number) => z.number().int('give a whole number of attempts').min(1, 'allow at least 1 attempt').max(1000).default(defaultAttempts);

/** How long activities may run and stay silent, and how often they are tried; workflows ask the worker for these. */
export const timeoutsSchema = z
  .object({
    /**
     * Heartbeat timeout of transfers (dump, recordings copy, verify, replicate, restore): an attempt silent for
     * longer is presumed dead and restarted. Long phases report progress every second, so raise this only for a
     * worker too loaded to report in time.
     * @default "30 seconds"
     */
    heartbeat: duration(1000, DEFAULT_ACTIVITY_TIMEOUTS.heartbeatMs),
    /**
     * Heartbeat timeout of undo steps (the restore's rollback, the backup's compensation).
     * @default "60 seconds"
     */
    undoHeartbeat: duration(1000, DEFAULT_ACTIVITY_TIMEOUTS.undoHeartbeatMs),
    /**
     * Start-to-close timeout of quick calls: control plane, bookkeeping, preflight checks.
     * @default "3 minutes"
     */
    quickCall: duration(1000, DEFAULT_ACTIVITY_TIMEOUTS.quickCallMs),
    /**
     * Start-to-close timeout of one attempt of a transfer or undo step: the longest a dump, copy or restore may take.
     * @default "12 hours"
     */
    transfer: duration(1000, DEFAULT_ACTIVITY_TIMEOUTS.transferMs),
    /** @default 5 */
    quickAttempts: attempts(DEFAULT_ACTIVITY_TIMEOUTS.quickAttempts),
    /** @default 10 */
    transferAttempts: attempts(DEFAULT_ACTIVITY_TIMEOUTS.transferAttempts),
    /** @default 30 */
    undoAttempts: attempts(DEFAULT_ACTIVITY_TIMEOUTS.undoAttempts),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.heartbeat >= t.transfer) {
      ctx.addIssue({ code: 'custom', path: ['heartbeat'], message: `the heartbeat timeout (${t.heartbeat} ms) must be shorter than timeouts.transfer (${t.transfer} ms)` });
    }
    if (t.undoHeartbeat >= t.transfer) {
      ctx.addIssue({ code: 'custom', path: ['undoHeartbeat'], message: `the undo heartbeat timeout (${t.undoHeartbeat} ms) must be shorter than timeouts.transfer (${t.transfer} ms)` });
    }
  });
export type TimeoutsConfig = z.infer<typeof timeoutsSchema>;

/**
 * TLS to the Temporal frontend. `true`: TLS, the server's certificate checked against the system's roots. An object:
 * TLS with any of these; a client certificate and its key together give mutual TLS. PEM text is named like a secret
 * (`{ file }` or `{ env }`) and read inside the process that connects.
 */
export const temporalTlsOptionsSchema = z
  .object({
    /** The name checked against the server's certificate (and sent as SNI); default: the host of `address`. */
    serverNameOverride: z.string().min(1).optional(),
    /** The CA that signed the server's certificate (PEM); default: the system's roots. */
    serverRootCA: secretRefSchema.optional(),
    /** This client's certificate (PEM), for mutual TLS; needs `clientKey`. */
    clientCert: secretRefSchema.optional(),
    /** The private key of `clientCert` (PEM). */
    clientKey: secretRefSchema.optional(),
  })
  .strict();

// Not a z.union: a union reports a wrong field inside the object as "invalid input" on `tls` as a whole.
export const temporalTlsSchema = z.unknown().transform((value, ctx): boolean | z.infer<typeof temporalTlsOptionsSchema> => {
  if (typeof value === 'boolean') return value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: "use true (TLS checked against the system's roots) or an object with any of serverNameOverride, serverRootCA, clientCert, clientKey" });
    return z.NEVER;
  }
  const parsed = temporalTlsOptionsSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  return z.NEVER;
});
export type TemporalTlsConfig = z.infer<typeof temporalTlsSchema>;

export const temporalSchema = z
  .object({
    address: z.string().default('127.0.0.1:7233'),
    namespace: z.string().default('default'),
    taskQueue: z.string().default('vaultpam-backup'),
    uiUrl: z.string().default('http://127.0.0.1:8233'),
    /** Default: no TLS (the local dev server), or TLS with the system's roots when `apiKey` is set. */
    tls: temporalTlsSchema.optional(),
    /** An API key (hosted Temporal), sent as `Authorization: Bearer` over TLS only. */
    apiKey: secretRefSchema.optional(),
  })
  .superRefine((t, ctx) => {
    const tls = typeof t.tls === 'object' ? t.tls : undefined;
    if (tls?.clientCert && !tls.clientKey) {
      ctx.addIssue({ code: 'custom', path: ['tls', 'clientKey'], message: 'temporal.tls.clientCert is given without its private key: add temporal.tls.clientKey ({"file": "/path/client.key"} or {"env": "NAME"}), or remove clientCert' });
    }
    if (tls?.clientKey && !tls.clientCert) {
      ctx.addIssue({ code: 'custom', path: ['tls', 'clientCert'], message: 'temporal.tls.clientKey is given without its certificate: add temporal.tls.clientCert ({"file": "/path/client.pem"}), or remove clientKey' });
    }
    if (t.apiKey && t.tls === false) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'temporal.apiKey is sent only over TLS: remove "tls": false (an API key implies TLS), or remove apiKey' });
    }
  });
export type TemporalConfig = z.infer<typeof temporalSchema>;

/** A point in time, as ISO 8601 text with its offset. */
const isoTime = z.iso.datetime({ offset: true, error: 'give a time as ISO 8601, e.g. 2027-03-01T00:00:00Z' });

/** The roles a credential may carry (see src/auth/principal.ts for what each allows). */
export const roleSchema = z.enum(ROLES, { error: `use one of the roles ${ROLES.join(', ')}` });

/**
 * One API token, stored hashed: the caller presents `vpb_<id>_<secret>`, the API looks the entry up by `id` and compares
 * SHA-256 digests of the whole token. The secret itself is stored nowhere.
 */
export const apiTokenEntrySchema = z
  .object({
    id: z.string().regex(/^[a-z0-9]{6,32}$/, 'a token id is 6-32 lower-case letters and digits (the part between "vpb_" and the second "_")'),
    /** Who the token speaks for: what the audit trail, requestedBy and approvals record. */
    principal: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,199}$/, 'a principal is a name such as "alice" or "ci-nightly": letters, digits and . _ @ : -'),
    roles: z.array(roleSchema).min(1, `give at least one role (${ROLES.join(', ')})`),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the 64-hex SHA-256 of the whole token, as `vaultpam-backup tokens create` writes it'),
    createdAt: isoTime,
    expiresAt: isoTime.optional(),
    /** true, or the time it was revoked (`vaultpam-backup tokens revoke` writes the time). */
    revoked: z.union([z.boolean(), isoTime]).optional(),
  })
  .strict();
export type ApiTokenEntry = z.infer<typeof apiTokenEntrySchema>;

/** The tokens file: `{ "tokens": [...] }`, written by `vaultpam-backup tokens create|revoke`. */
export const apiTokensFileSchema = z.object({ tokens: z.array(apiTokenEntrySchema) }).strict();
export type ApiTokensFile = z.infer<typeof apiTokensFileSchema>;

/** Signed bearer tokens (JWT) issued by the organisation's identity provider. */
export const apiJwtSchema = z
  .object({
    /** The `iss` every accepted token carries. */
    issuer: z.string().min(1, 'give the issuer the identity provider writes in "iss"'),
    /** The `aud` every accepted token carries (this API). */
    audience: z.string().min(1, 'give the audience the identity provider writes in "aud" for this API'),
    /** Where the provider publishes its signing keys (JWKS). */
    jwksUrl: z.url('give the JWKS URL, e.g. https://idp.example.com/.well-known/jwks.json').optional(),
    /** A PEM public key (or a JWKS as JSON) in a file, for a provider whose keys are distributed by hand. */
    publicKeyFile: z.string().min(1).optional(),
    /** @default "sub" */
    principalClaim: z.string().min(1).default('sub'),
    /** A claim holding the roles, as a list or space-separated text; names that are not roles are ignored. @default "roles" */
    rolesClaim: z.string().min(1).default('roles'),
    /** Signature algorithms accepted, e.g. ["RS256"]; default: those that suit the key. */
    algorithms: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict()
  .superRefine((jwt, ctx) => {
    if (!jwt.jwksUrl === !jwt.publicKeyFile) {
      ctx.addIssue({ code: 'custom', path: ['jwksUrl'], message: 'give exactly one of jwksUrl (the provider\'s JWKS) or publicKeyFile (a PEM public key)' });
    }
  });
export type ApiJwtConfig = z.infer<typeof apiJwtSchema>;

export const apiAuthSchema = z
  .object({
    /**
     * `tokens`: every caller presents an API token or a JWT. `development`: no credential at all, every caller is
     * "developer" with every role; accepted only while api.host is a loopback address.
     */
    mode: z.enum(['tokens', 'development'], { error: 'use "tokens" (every caller presents a credential) or "development" (loopback only, no credential)' }).default('tokens'),
    /** A JSON file of hashed tokens (mode 0600), re-read when it changes: a revocation needs no restart. */
    tokensFile: z.string().min(1).optional(),
    /** Hashed tokens written in the configuration itself. */
    tokens: z.array(apiTokenEntrySchema).optional(),
    jwt: apiJwtSchema.optional(),
  })
  .strict()
  .superRefine((auth, ctx) => {
    if (auth.mode === 'tokens' && !auth.tokensFile && !auth.tokens?.length && !auth.jwt) {
      ctx.addIssue({
        code: 'custom',
        path: ['tokensFile'],
        message: 'mode "tokens" needs a way to check a credential: set tokensFile (then `vaultpam-backup tokens create`), tokens, or jwt',
      });
    }
    const ids = new Set<string>();
    auth.tokens?.forEach((t, i) => {
      if (ids.has(t.id)) ctx.addIssue({ code: 'custom', path: ['tokens', i, 'id'], message: `token id "${t.id}" is used twice; ids must be unique` });
      ids.add(t.id);
    });
  });
export type ApiAuthConfig = z.infer<typeof apiAuthSchema>;

/** A public key that verifies signed restore requests and approvals: PEM text inline, or a file holding it. */
export const approvalPublicKeySchema = z.union(
  [
    z.object({ id: z.string().min(1, 'give the key an id (signatures name it)'), pem: z.string().includes('PUBLIC KEY', { message: 'give the public key in PEM form (-----BEGIN PUBLIC KEY-----)' }) }).strict(),
    z.object({ id: z.string().min(1, 'give the key an id (signatures name it)'), file: z.string().min(1, 'give the path of the PEM file') }).strict(),
  ],
  { error: 'give each public key as {"id": "...", "pem": "-----BEGIN PUBLIC KEY-----..."} or {"id": "...", "file": "/path/key.pub.pem"}' },
);

/**
 * Signed restore requests and approvals. The API and the CLI sign with `signingKey` (an Ed25519 private key in PKCS8
 * PEM, named like any secret); workers verify with `publicKeys` and never hold a private key.
 */
export const approvalsSchema = z
  .object({
    signingKey: secretRefSchema.optional(),
    /** The id written into every signature made with signingKey: one of the workers' publicKeys. @default "approvals-1" */
    signingKeyId: z.string().min(1).default('approvals-1'),
    publicKeys: z.array(approvalPublicKeySchema).default([]),
  })
  .strict()
  .superRefine((a, ctx) => {
    const ids = new Set<string>();
    a.publicKeys.forEach((k, i) => {
      if (ids.has(k.id)) ctx.addIssue({ code: 'custom', path: ['publicKeys', i, 'id'], message: `public key id "${k.id}" is used twice; ids must be unique` });
      ids.add(k.id);
    });
  });
export type ApprovalsConfig = z.infer<typeof approvalsSchema>;

const approvalCount = z.number().int('give a whole number of approvals').min(0, 'use 0 (no approval) or more').max(10, 'at most 10 approvals');

/** Who must approve a restore, per target: the worker's policy, which the restore workflow asks for. */
export const restorePolicySchema = z
  .object({
    /** Approvals from distinct principals, none of them the requester. @default {production: 1, staging: 0} */
    approvals: z.object({ production: approvalCount.default(1), staging: approvalCount.default(0) }).strict().prefault({}),
    /** One approval with a reason (at least 10 characters) stands for all required ones; loud: report, metric, log, webhook. @default {enabled: false} */
    breakGlass: z.object({ enabled: z.boolean().default(false) }).strict().prefault({}),
  })
  .strict();

/** Where a restore awaiting approval (or approved by break-glass) is announced. */
export const notificationsSchema = z
  .object({
    webhook: z
      .object({
        url: z.string().url('give the webhook URL, e.g. https://chat.example.com/hooks/restores'),
        /** HMAC-SHA256 key: the body's MAC is sent as X-VaultPAM-Signature: sha256=<hex>. */
        secret: secretRefSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const configSchema = z
  .object({
    /** The production deployment this orchestrator protects. */
    deployment: deploymentSchema,
    /** A staging deployment for restore drills. */
    staging: deploymentSchema.optional(),
    temporal: temporalSchema.prefault({}),
    locations: z.array(locationSchema).min(1, 'configure at least one backup location'),
    encryption: z.object({
      activeKeyId: z.string().min(1),
      keys: z
        .array(z.object({ id: z.string().min(1), secret: secretRefSchema }))
        .min(1, 'configure at least one master key'),
    }),
    backup: z
      .object({
        /** Concurrent recording copies per worker. */
        concurrency: z.number().int().min(1).max(256).default(8),
        /**
         * The recordings copy is split into shards, each an activity that any worker may run: one shard per this many
         * recordings, at most `maxShards`. More workers then copy more at once.
         * @default 20000
         */
        objectsPerShard: z.number().int().min(1).default(20_000),
        /** @default 16 */
        maxShards: z.number().int().min(1).max(256).default(16),
        /**
         * Listings of the recordings bucket's prefixes (a day's folder each, sessions/<yyyy>/<mm>/<dd>/) run at once
         * ahead of the backup's and the checkpoints' merge, which still reads the keys in order. 1 lists in one stream.
         * @default 4
         */
        listingConcurrency: z.number().int().min(1).max(64).default(4),
        /**
         * Memory for upload buffers, in MiB, per worker: every S3 part buffer is drawn from it, so peak memory follows
         * this setting, not the size of the largest recording. Parts are budget / (2 × concurrency × S3 locations),
         * between 5 and 32 MiB (each recording is written to every S3 location at once; a restore writes to one
         * bucket). Each upload holds one part, and a second one (to fill while the first is sent) while the budget has
         * room. It must hold one 5 MiB part (S3's smallest) per upload: concurrency × S3 locations × 5 MiB.
         * @default 64, or concurrency × S3 locations × 5 MiB when that is more (see `memoryBudgetMiB()`)
         */
        memoryBudgetMiB: z.number().int().min(16).max(65_536).optional(),
        /** Scratch directory for temporary files (never holds plaintext). */
        workDir: z.string().default('/tmp'),
        /** Recovery point objective: preflight fails when the newest committed backup is older than this. */
        rpoHours: z.number().positive().max(24 * 365).default(24),
        /**
         * The database dump split by table: the schema and small tables in one pg_dump stream, and each table larger
         * than `minTableBytes` in a stream and artifact of its own, up to `jobs` at a time (from the same snapshot).
         * A restore then loads those tables in parallel. `jobs: 1` with `minTableBytes` above every table is one stream.
         */
        parallelDump: z
          .object({
            /** pg_dump processes at a time (each holds a connection and about one core). @default 2 */
            jobs: z.number().int().min(1).max(32).default(2),
            /** Tables whose size (pg_table_size, TOAST included) exceeds this get an artifact of their own. @default 64 MiB */
            minTableBytes: z.number().int().min(1).default(64 * 1024 * 1024),
          })
          .prefault({}),
      })
      .prefault({}),
    verify: z
      .object({
        /**
         * Recordings a backup reads whole and opens among the blobs it wrote (the rest are key-checked); every blob is
         * read by `check --read-data` in rotating slices.
         * @default 16
         */
        sampleRecordings: z.number().int().min(0).max(100_000).default(16),
      })
      .prefault({}),
    /**
     * Which committed backups to keep: any of the newest `keepLast`, and any younger than `keepDays`; the newest is
     * always kept. Pruning runs at the end of every backup, under the same lock.
     */
    retention: z
      .object({
        keepLast: z.number().int().min(1).default(30),
        keepDays: z.number().min(0).default(30),
        /** Safety snapshots (tag `pre-restore`) do not count toward keepLast; they are kept this many days. */
        keepSafetySnapshotsDays: z.number().min(0).default(7),
      })
      .prefault({}),
    /**
     * Point-in-time protection: how far back a restore to any moment reaches. Recordings checkpoints and connector
     * exports older than the window are pruned (the newest one at or before its start, and the newest of all, stay).
     */
    pointInTime: z
      .object({
        /** @default 7 */
        windowDays: z
          .number({ error: 'pointInTime.windowDays must be a number of days, e.g. 7' })
          .positive('pointInTime.windowDays must be more than 0 days (e.g. 7): a window of none would keep no moment to restore to')
          .max(3650, 'pointInTime.windowDays must be at most 3650 days (10 years)')
          .default(7),
      })
      .strict()
      .prefault({}),
    timeouts: timeoutsSchema.prefault({}),
    worker: z
      .object({
        /**
         * Serve the worker's own metrics (activity durations and failures) at http://metricsHost:metricsPort/metrics.
         * @default off (no port)
         */
        metricsPort: port.optional(),
        /** @default "127.0.0.1" */
        metricsHost: z.string().default('127.0.0.1'),
        /**
         * Shards of a recordings copy this worker runs at once (they come from a task queue of their own, the main
         * one's name plus "-shards"); the others wait there for any worker with room. Each shard holds
         * `backup.concurrency` copies and an index stream, so this bounds the worker's memory, and more workers copy
         * more at once.
         * @default 2
         */
        shardsAtOnce: z.number().int().min(1).max(64).default(2),
      })
      .strict()
      .prefault({}),
    api: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: port.default(8470),
        /** Who may call the API, and how they prove it; `vaultpam-backup api` refuses to start without it. */
        auth: apiAuthSchema.optional(),
        /**
         * The API the command line sends its state-changing commands to (backup, restore, confirm, ...), with the
         * caller's own token; default: the command line drives Temporal directly.
         */
        url: z.url('give the API base URL, e.g. http://127.0.0.1:8470').optional(),
        /** Refused: see `auth`. Kept in the schema only to explain the migration. */
        token: z.unknown().optional(),
      })
      .superRefine((api, ctx) => {
        if (api.token !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['token'],
            message:
              'api.token (one shared token) is no longer accepted: one shared token cannot tell people apart. Remove it, set api.auth.tokensFile, and create one token per person with `vaultpam-backup tokens create --principal <name> --roles <roles>`',
          });
        }
      })
      .prefault({}),
    approvals: approvalsSchema.prefault({}),
    restore: restorePolicySchema.prefault({}),
    notifications: notificationsSchema.prefault({}),
  })
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.locations.forEach((location, i) => {
      if (names.has(location.name)) {
        ctx.addIssue({ code: 'custom', path: ['locations', i, 'name'], message: `location name "${location.name}" is used twice; names must be unique` });
      }
      names.add(location.name);
    });
    const uploads = concurrentUploads(config);
    const budget = config.backup.memoryBudgetMiB;
    if (budget !== undefined && budget < uploads * MIN_PART_MIB) {
      ctx.addIssue({
        code: 'custom',
        path: ['backup', 'memoryBudgetMiB'],
        message:
          `memoryBudgetMiB ${budget} is too small: backup.concurrency ${config.backup.concurrency} × ${Math.max(1, uploads / config.backup.concurrency)} S3 location(s) ` +
          `= ${uploads} uploads at once, each holding at least one ${MIN_PART_MIB} MiB part (S3's smallest); set it to at least ${uploads * MIN_PART_MIB}, or lower backup.concurrency`,
      });
    }
    if (!config.encryption.keys.some((k) => k.id === config.encryption.activeKeyId)) {
      ctx.addIssue({
        code: 'custom',
        path: ['encryption', 'activeKeyId'],
        message: `activeKeyId "${config.encryption.activeKeyId}" names no key in encryption.keys`,
      });
    }
  });

export type Config = z.infer<typeof configSchema>;

/** S3's smallest multipart part, in MiB: the least memory an upload of a large object holds. */
export const MIN_PART_MIB = 5;
/** backup.memoryBudgetMiB when none is set (and the configuration needs no more). */
export const DEFAULT_MEMORY_BUDGET_MIB = 64;

/** S3 uploads one worker runs at once: each of backup.concurrency copies writes to every S3 location (a restore, to one bucket). */
export function concurrentUploads(config: Pick<Config, 'backup' | 'locations'>): number {
  return config.backup.concurrency * Math.max(1, config.locations.filter((l) => l.kind === 's3').length);
}

/** The worker's memory budget for upload buffers, in MiB: the configured one, else the default, raised to what the uploads need. */
export function memoryBudgetMiB(config: Pick<Config, 'backup' | 'locations'>): number {
  return config.backup.memoryBudgetMiB ?? Math.max(DEFAULT_MEMORY_BUDGET_MIB, concurrentUploads(config) * MIN_PART_MIB);
}
export type ConfigInput = z.input<typeof configSchema>;
