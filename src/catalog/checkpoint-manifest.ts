// The manifests of point-in-time protection: a recordings checkpoint and a connector export, each the commit point of its folder.
import { z } from 'zod';
import { wrappedKeySchema } from '../crypto/envelope';
import { checkpointKey, checkpointPrefix, checkpointsPrefix, connectorExportKey, connectorExportPrefix, connectorExportsPrefix } from '../storage/layout';
import { artifactSchema } from './manifest';

const authenticationSchema = z.object({ alg: z.literal('HMAC-SHA256'), keyId: z.string().min(1), mac: z.string().regex(/^[0-9a-f]{64}$/) });
const encryptionSchema = z.object({ cipher: z.literal('AES-256-GCM'), framing: z.literal('VPB1'), dataKey: wrappedKeySchema });
const locationsSchema = z.array(z.object({ name: z.string(), region: z.string() })).min(1);

/** The label under which a checkpoint manifest is MACed (docs/encryption-format.md): never taken for another kind. */
export const CHECKPOINT_MAC_LABEL = 'recordings checkpoint';
/** The label under which a connector export manifest is MACed. */
export const CONNECTOR_EXPORT_MAC_LABEL = 'connector export';

export const checkpointManifestSchema = z.object({
  format: z.literal(1),
  kind: z.literal('recordings-checkpoint'),
  deployment: z.string(),
  checkpointId: z.string(),
  startedAt: z.string(),
  committedAt: z.string(),
  /**
   * The moment the checkpoint covers: the recordings bucket's clock when its listing started (read as the dump step
   * reads it). The index holds exactly the recordings present then; one deleted before it is absent.
   */
  coveredAt: z.string(),
  /**
   * The database server's clock read right after the bucket's (ISO 8601 UTC, microseconds): the checkpoint's moment on
   * the clock a restore's moment is given in, whatever the skew between the two. Absent when the database could not
   * be read (the checkpoint is then placed by `coveredAt`) and in checkpoints written before it was recorded.
   */
  databaseAt: z.iso.datetime({ precision: 6 }).optional(),
  /** What the listing was merged against: the previous checkpoint, or for the first one the newest backup. */
  previous: z.object({ kind: z.enum(['checkpoint', 'backup']), id: z.string() }).optional(),
  encryption: encryptionSchema,
  artifacts: z.object({
    recordingsIndex: artifactSchema,
    /** The blobs this checkpoint sealed itself (JSON strings, one a line); the rest of its index is the previous one's. */
    addedBlobs: artifactSchema,
  }),
  recordings: z.object({
    objects: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    /** Recordings this checkpoint sealed in blobs of its own; the rest share a blob through the previous index. */
    copiedObjects: z.number().int().nonnegative(),
    copiedBytes: z.number().int().nonnegative(),
    reusedObjects: z.number().int().nonnegative(),
    /** Objects listed with a modification time after `coveredAt`: left to the next checkpoint. */
    newerThanPoint: z.number().int().nonnegative(),
  }),
  /** Where the checkpoint committed: every blob its index names is there. */
  locations: locationsSchema,
  authentication: authenticationSchema.optional(),
});
export type CheckpointManifest = z.infer<typeof checkpointManifestSchema>;

export const connectorExportManifestSchema = z.object({
  format: z.literal(1),
  kind: z.literal('connector-export'),
  deployment: z.string(),
  exportId: z.string(),
  /** When the control plane's answer arrived: the inventory held at least from then until the next export. */
  exportedAt: z.string(),
  /** The database server's clock read right after the answer arrived: the export's moment on the database's clock. */
  databaseAt: z.iso.datetime({ precision: 6 }).optional(),
  committedAt: z.string(),
  encryption: encryptionSchema,
  /** The inventory as the admin API gave it (importable as is), in canonical JSON. */
  artifacts: z.object({ connectors: artifactSchema }),
  connectors: z.object({
    count: z.number().int().nonnegative(),
    /** SHA-256 of the canonical inventory without its `exportedAt`: what the next export compares against. */
    digest: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  locations: locationsSchema,
  authentication: authenticationSchema.optional(),
});
export type ConnectorExportManifest = z.infer<typeof connectorExportManifestSchema>;

/** The two kinds side by side: where each lives, how it is MACed, which field is its id and which its moment. */
export interface PointKind<M> {
  what: string;
  /** The folder of every id of this kind. */
  prefix(deployment: string): string;
  /** One id's folder. */
  folder(deployment: string, id: string): string;
  /** One file of one id's folder. */
  key(deployment: string, id: string, file: string): string;
  label: string;
  schema: z.ZodType<M>;
  idOf(manifest: M): string;
  deploymentOf(manifest: M): string;
  momentOf(manifest: M): string;
  dataKeyOf(manifest: M): z.infer<typeof wrappedKeySchema>;
  withDataKey(manifest: M, dataKey: z.infer<typeof wrappedKeySchema>): M;
}

export const CHECKPOINT_KIND: PointKind<CheckpointManifest> = {
  what: 'recordings checkpoint',
  prefix: checkpointsPrefix,
  folder: checkpointPrefix,
  key: checkpointKey,
  label: CHECKPOINT_MAC_LABEL,
  schema: checkpointManifestSchema,
  idOf: (m) => m.checkpointId,
  deploymentOf: (m) => m.deployment,
  // On the database's clock when it was read, so a moment given as a commit time selects the right checkpoint.
  momentOf: (m) => m.databaseAt ?? m.coveredAt,
  dataKeyOf: (m) => m.encryption.dataKey,
  withDataKey: (m, dataKey) => ({ ...m, encryption: { ...m.encryption, dataKey } }),
};

export const CONNECTOR_EXPORT_KIND: PointKind<ConnectorExportManifest> = {
  what: 'connector export',
  prefix: connectorExportsPrefix,
  folder: connectorExportPrefix,
  key: connectorExportKey,
  label: CONNECTOR_EXPORT_MAC_LABEL,
  schema: connectorExportManifestSchema,
  idOf: (m) => m.exportId,
  deploymentOf: (m) => m.deployment,
  momentOf: (m) => m.databaseAt ?? m.exportedAt,
  dataKeyOf: (m) => m.encryption.dataKey,
  withDataKey: (m, dataKey) => ({ ...m, encryption: { ...m.encryption, dataKey } }),
};
