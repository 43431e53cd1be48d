// ControlPlane over the VaultPAM admin HTTP API (Node's fetch); validates every answer against its schema.
import type { z } from 'zod';
import { VaultpamBackupError } from '../errors/catalogue';
import {
  auditEventRecordedSchema,
  connectorInventorySchema,
  healthSchema,
  maintenanceSchema,
  sessionLaunchSchema,
  statsSchema,
  type ConnectorInventory,
} from './admin-api-schema';
import type { ControlPlane } from './control-plane';

export interface HttpControlPlaneOptions {
  url: string;
  token: string;
  /** Per-request timeout in ms. @default 15000 */
  timeoutMs?: number;
}

export function createHttpControlPlane(options: HttpControlPlaneOptions): ControlPlane {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 15_000;

  async function call<S extends z.ZodType>(method: string, path: string, schema: S | undefined, body?: unknown, signal?: AbortSignal): Promise<z.infer<S>> {
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new VaultpamBackupError('VPB_ERR_CONTROL_PLANE_UNREACHABLE', base, `${method} ${path}: ${cause}`);
    }
    const text = await response.text();
    if (!response.ok) {
      let detail = text.slice(0, 300);
      try {
        const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
        if (parsed.error) detail = `${parsed.error.code ?? ''} ${parsed.error.message ?? ''}`.trim();
      } catch {
        // not JSON: keep the raw text
      }
      throw new VaultpamBackupError('VPB_ERR_CONTROL_PLANE', base, `${response.status} to ${method} ${path}: ${detail}`);
    }
    if (!schema) return undefined as z.infer<S>;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new VaultpamBackupError('VPB_ERR_CONTROL_PLANE', base, `non-JSON answer to ${method} ${path}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new VaultpamBackupError('VPB_ERR_CONTROL_PLANE', base, `an answer to ${method} ${path} that does not fit the contract: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    return parsed.data;
  }

  return {
    url: base,
    health: (signal) => call('GET', '/healthz', healthSchema, undefined, signal),
    maintenance: (signal) => call('GET', '/admin/maintenance', maintenanceSchema, undefined, signal),
    setMaintenance: (enabled, reason, signal) => call('POST', '/admin/maintenance', maintenanceSchema, { enabled, reason }, signal),
    exportConnectors: (signal) => call('GET', '/admin/connectors/export', connectorInventorySchema, undefined, signal),
    importConnectors: async (inventory: ConnectorInventory, signal) => {
      await call('POST', '/admin/connectors/import', undefined, inventory, signal);
    },
    stats: (signal) => call('GET', '/admin/stats', statsSchema, undefined, signal),
    launchSession: (resourceId, signal) => call('POST', '/sessions', sessionLaunchSchema, { resourceId }, signal),
    recordAuditEvent: (event, signal) => call('POST', '/admin/audit-events', auditEventRecordedSchema, event, signal),
  };
}
