// The one way the orchestrator speaks to a VaultPAM control plane; adapters fill it (HTTP admin API here).
import type { AuditEventRecorded, AuditEventRequest, ConnectorInventory, Health, MaintenanceState, SessionLaunch, Stats } from './admin-api-schema';

export interface ControlPlane {
  readonly url: string;
  health(signal?: AbortSignal): Promise<Health>;
  maintenance(signal?: AbortSignal): Promise<MaintenanceState>;
  setMaintenance(enabled: boolean, reason: string, signal?: AbortSignal): Promise<MaintenanceState>;
  exportConnectors(signal?: AbortSignal): Promise<ConnectorInventory>;
  importConnectors(inventory: ConnectorInventory, signal?: AbortSignal): Promise<void>;
  stats(signal?: AbortSignal): Promise<Stats>;
  launchSession(resourceId: string, signal?: AbortSignal): Promise<SessionLaunch>;
  /** Writes a line in the deployment's own audit log (e.g. "restored backup ..."); the same line asked twice is written once. */
  recordAuditEvent(event: AuditEventRequest, signal?: AbortSignal): Promise<AuditEventRecorded>;
}

/** Stops and starts the control-plane services (systemctl, kubectl, the sandbox's script...). */
export interface ServiceControl {
  stop(signal?: AbortSignal): Promise<void>;
  start(signal?: AbortSignal): Promise<void>;
}
