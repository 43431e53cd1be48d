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
