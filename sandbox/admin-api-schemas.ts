// The shapes the sandbox's admin API reads and answers, one zod schema each; types are inferred from them.
import { z } from 'zod';

const isoTime = z.iso.datetime({ offset: true });
const id = z.string().min(1).max(200);

export const maintenanceRequestSchema = z
  .object({
    enabled: z.boolean({ error: 'enabled: give true or false' }),
    reason: z.string().max(500).optional(),
  })
  .strict();
export type MaintenanceRequest = z.infer<typeof maintenanceRequestSchema>;

export const connectorSchema = z
  .object({
    id,
    name: z.string().min(1).max(200),
    kind: z.string().min(1).max(100),
    config: z.record(z.string(), z.unknown()),
    enabled: z.boolean().default(true),
    createdAt: isoTime.optional(),
    updatedAt: isoTime.optional(),
  })
  .strict();
export type Connector = z.infer<typeof connectorSchema>;

/** GET /admin/connectors/export answers it; POST /admin/connectors/import takes it back unchanged. */
export const connectorInventorySchema = z
  .object({
    exportedAt: isoTime,
    connectors: z.array(connectorSchema),
  })
  .strict();
export type ConnectorInventory = z.infer<typeof connectorInventorySchema>;

export const resourceKindSchema = z.enum(['ssh', 'rdp', 'database', 'kubernetes', 'web']);

export const createResourceSchema = z
  .object({
    name: z.string().min(1).max(200),
    kind: resourceKindSchema,
    address: z.string().min(1).max(500),
    /** Defaults to the oldest organisation. */
    organisationId: id.optional(),
    safes: z
      .array(
        z
          .object({
            name: z.string().min(1).max(200),
            credentials: z
              .array(
                z
                  .object({
                    username: z.string().min(1).max(200),
                    /** Generated when absent. */
                    secret: z.string().min(1).max(4096).optional(),
                  })
                  .strict(),
              )
              .max(100)
              .default([]),
          })
          .strict(),
      )
      .max(100)
      .default([]),
  })
  .strict();
export type CreateResourceRequest = z.infer<typeof createResourceSchema>;

export const listResourcesQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

export const idParamsSchema = z.object({ id });

export const launchSessionSchema = z
  .object({
    resourceId: id,
    /** The user the session runs as; none for a service launch (the restore's smoke test). */
    userId: id.optional(),
  })
  .strict();
export type LaunchSessionRequest = z.infer<typeof launchSessionSchema>;

export const statsSchema = z.object({
  resources: z.number().int(),
  safes: z.number().int(),
  audit_log: z.number().int(),
  credentials: z.number().int(),
  sessions: z.number().int(),
  connectors: z.number().int(),
});
export type Stats = z.infer<typeof statsSchema>;

/** POST /admin/audit-events: a line the backup orchestrator writes in this deployment's audit log. */
export const auditEventSchema = z
  .object({
    actor: z.string().min(1).max(200),
    action: z.string().min(1).max(200),
    details: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();
export type AuditEventRequest = z.infer<typeof auditEventSchema>;
