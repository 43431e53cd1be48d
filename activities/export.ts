// Seed step 4: export the connector inventory from the control plane's admin API, validated, then encrypted.
import type { TargetName } from '../src/config/load';
import { writeArtifact } from '../src/catalog/artifacts';
import type { Artifact } from '../src/catalog/manifest';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupKey, type BackupLocation } from '../src/storage';
import type { ConnectorInventory } from '../src/vaultpam/admin-api-schema';

export const CONNECTORS_ARTIFACT = 'connectors.json.enc';

/** Read inside the pause, so the inventory matches the database snapshot. */
export async function exportConnectors(deps: Dependencies, target: TargetName, signal?: AbortSignal): Promise<ConnectorInventory> {
  return deps.controlPlane(target).exportConnectors(signal);
}

export async function storeConnectors(location: BackupLocation, deployment: string, backupId: string, inventory: ConnectorInventory, dataKey: Buffer): Promise<Artifact> {
  return writeArtifact(location, backupKey(deployment, backupId, CONNECTORS_ARTIFACT), Buffer.from(JSON.stringify(inventory)), dataKey);
}
