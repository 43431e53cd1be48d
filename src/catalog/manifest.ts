// The manifest: the commit point of a backup, written last in every location; a backup without one does not exist.
import { z } from 'zod';
import { wrappedKeySchema } from '../crypto/envelope';

/**
 * Format 3: the database dump may be split into table parts (artifacts named `db:<schema.table>`); an older reader
 * must refuse it rather than restore the main archive alone. Format 2: recordings index with named fields, blobs named by identity and key in shard folders, a MAC over the
 * manifest. Format 1 manifests stay readable (reported as unauthenticated by `check`).
 */
export const MANIFEST_FORMAT = 2;
export const MANIFEST_FORMATS = [1, 2, 3] as const;
/** The format of a manifest whose database dump is split into table parts. */
export const MANIFEST_FORMAT_PARTS = 3;

export const artifactSchema = z.object({
  /** Key inside a location, relative to its prefix. */
  key: z.string(),
  /** Ciphertext bytes as stored. */
  size: z.number().int().nonnegative(),
  /** SHA-256 of the stored (encrypted) bytes: comparable across locations without a key. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  plaintextBytes: z.number().int().nonnegative(),
  /** SHA-256 of the decrypted content: proves end to end that what is restored is what was dumped. */
  plaintextSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Table parts of the database dump only: the "schema.table" whose rows the part holds. */
  table: z.string().optional(),
});
export type Artifact = z.infer<typeof artifactSchema>;

export const manifestSchema = z.object({
  format: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  backupId: z.string(),
  deployment: z.string(),
  /** Workflow that wrote it, so the Web UI run can be found from the catalog. */
  workflowId: z.string(),
  startedAt: z.string(),
  committedAt: z.string(),
  reason: z.string().optional(),
  requestedBy: z.string().optional(),
  tags: z.array(z.string()).default([]),
  quiesce: z.object({
    startedAt: z.string(),
    endedAt: z.string(),
    pauseMs: z.number().nonnegative(),
    /** The recordings bucket's clock at the consistent point: objects modified later are not in this backup. */
    recordingsPoint: z.string(),
    /**
     * The database's clock at the snapshot, to the microsecond (ISO 8601, UTC): rows created later are not in this
     * backup. Absent from manifests written before it was recorded; the loss report then falls back to recordingsPoint,
     * which the bucket gives only to the second.
     */
    databasePoint: z.iso.datetime({ precision: 6 }).optional(),
  }),
  postgres: z.object({
    serverVersion: z.string(),
    database: z.string(),
    rowCounts: z.record(z.string(), z.number().int().nonnegative()),
  }),
  encryption: z.object({
    cipher: z.literal('AES-256-GCM'),
    framing: z.literal('VPB1'),
    dataKey: wrappedKeySchema,
  }),
  artifacts: z
    .object({
      /** The database dump: whole, or (format 3) the schema and the small tables when table parts follow. */
      db: artifactSchema,
      connectors: artifactSchema,
      recordingsIndex: artifactSchema,
    })
    /** Format 3: `db:<schema.table>`, a data-only dump of one large table (src/catalog/database-parts.ts). */
    .catchall(artifactSchema),
  connectors: z.object({ count: z.number().int().nonnegative() }),
  recordings: z.object({
    objects: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    /** Objects and bytes this backup copied; the rest were shared with the previous backup. */
    copiedObjects: z.number().int().nonnegative(),
    copiedBytes: z.number().int().nonnegative(),
    reusedObjects: z.number().int().nonnegative(),
    previousBackupId: z.string().optional(),
  }),
  verify: z.object({
    level: z.enum(['standard', 'deep']),
    verifiedAt: z.string(),
    dumpEntries: z.number().int().nonnegative(),
    deepRowCounts: z.record(z.string(), z.number().int().nonnegative()).optional(),
  }),
  locations: z.array(z.object({ name: z.string(), region: z.string() })).min(1),
  /**
   * A backup made from a moment of point-in-time protection (tag `point-in-time`): the moment, the base backup and
   * the recordings checkpoint and connector export it was made from. Absent from backups taken from the live deployment.
   */
  moment: z
    .object({
      at: z.string(),
      baseId: z.string(),
      checkpointId: z.string(),
      checkpointCoveredAt: z.string(),
      exportId: z.string(),
      exportedAt: z.string(),
    })
    .optional(),
  /**
   * The audit trail's newest entry when the backup committed (its own "backup.committed" entry): a trail that later
   * lacks it, or holds another entry there, was cut or edited. Absent in manifests written before the audit trail.
   */
  auditHead: z.object({ seq: z.number().int().positive(), hash: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
  /**
   * HMAC-SHA256 over the rest of the manifest (canonical JSON), under a key derived from the master key `keyId`
   * (src/catalog/manifest-mac.ts). Required from format 2 on; rotation computes it again under the new key.
   */
  authentication: z.object({ alg: z.literal('HMAC-SHA256'), keyId: z.string().min(1), mac: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

export function parseManifest(text: string, where: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`the manifest at ${where} is not JSON`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`the manifest at ${where} does not fit format ${MANIFEST_FORMATS.join(' or ')}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}
