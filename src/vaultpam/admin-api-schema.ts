// The shapes of the VaultPAM admin API's answers (the control-plane contract), one zod schema each.
import { z } from 'zod';

export const healthSchema = z.object({ status: z.string(), maintenance: z.boolean().optional() }).loose();
export type Health = z.infer<typeof healthSchema>;

export const maintenanceSchema = z.object({ enabled: z.boolean(), reason: z.string().nullish(), since: z.string().nullish() }).loose();
export type MaintenanceState = z.infer<typeof maintenanceSchema>;

export const statsSchema = z
  .object({
    resources: z.number().int().nonnegative(),
    safes: z.number().int().nonnegative(),
    audit_log: z.number().int().nonnegative(),
    credentials: z.number().int().nonnegative(),
    sessions: z.number().int().nonnegative(),
  })
  .loose();
export type Stats = z.infer<typeof statsSchema>;

export const connectorSchema = z.object({ id: z.string(), name: z.string(), kind: z.string() }).loose();
export const connectorInventorySchema = z.object({ connectors: z.array(connectorSchema) }).loose();
export type ConnectorInventory = z.infer<typeof connectorInventorySchema>;

export const sessionLaunchSchema = z.object({ sessionId: z.string(), recordingKey: z.string() }).loose();
export type SessionLaunch = z.infer<typeof sessionLaunchSchema>;

/** POST /admin/audit-events: one line in the deployment's own audit log, written by the orchestrator. */
export const auditEventRequestSchema = z.object({
  actor: z.string().min(1).max(200),
  action: z.string().min(1).max(200),
  details: z.record(z.string(), z.unknown()),
});
export type AuditEventRequest = z.infer<typeof auditEventRequestSchema>;
export const auditEventRecordedSchema = z.object({ id: z.string() }).loose();
export type AuditEventRecorded = z.infer<typeof auditEventRecordedSchema>;
