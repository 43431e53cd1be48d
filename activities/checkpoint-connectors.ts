// Continuous protection of the connector inventory: exported through the control plane and stored, encrypted and MACed
// in every location, only when its canonical form differs from the newest stored export.
import { databaseClockOf } from './point-in-time-context';
import { createHash, randomBytes } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { openArtifact, readAll, writeArtifactToEach } from '../src/catalog/artifacts';
import { CONNECTOR_EXPORT_KIND, type ConnectorExportManifest } from '../src/catalog/checkpoint-manifest';
import { canonicalJson } from '../src/catalog/manifest-mac';
import { listPointIds, readPointManifest, writePointManifest, type PointAt } from '../src/catalog/point-in-time-catalog';
import { generateDataKey, unwrapKey } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { pointInTimeId } from '../src/storage/layout';
import { connectorInventorySchema, type ConnectorInventory } from '../src/vaultpam/admin-api-schema';
import { primaryLocation } from './backup-context';
import { targetOf, type CheckpointRecordingsInput } from './checkpoint-recordings';
import { exportConnectors } from './export';

/** The inventory of one export, as canonical JSON, encrypted under the export's data key. */
export const CONNECTOR_EXPORT_ARTIFACT = 'connectors.json.enc';

export interface CheckpointConnectorsResult {
  /** False when the inventory equals the newest stored export: nothing was written. */
  changed: boolean;
  /** The export now in force (the one written, or the newest stored). */
  exportId: string | undefined;
  exportedAt: string;
  /** The export's moment on the database's clock, when it was read: what selects it. */
  databaseAt?: string;
  connectors: number;
  /** Locations the new export committed at (empty when nothing changed). */
  locations: string[];
}

/**
 * SHA-256 of the inventory's canonical JSON without the export's own timestamp (`exportedAt`, which the admin API sets
 * at every answer): two exports of the same inventory have the same digest.
 */
export function inventoryDigest(inventory: ConnectorInventory): string {
  const { exportedAt: _stamp, ...content } = inventory as ConnectorInventory & { exportedAt?: unknown };
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

/** The newest export's manifest readable at a location, trying the newest id first. */
async function newestExport(deps: Dependencies, deployment: string): Promise<ConnectorExportManifest | undefined> {
  const keyRing = deps.keyRing();
  for (const location of deps.locations()) {
    let ids: string[];
    try {
      ids = (await listPointIds(location, CONNECTOR_EXPORT_KIND, deployment)).committed;
    } catch {
      continue;
    }
    for (let i = ids.length - 1; i >= 0; i--) {
      const manifest = await readPointManifest(location, CONNECTOR_EXPORT_KIND, deployment, ids[i]!, keyRing).catch(() => undefined);
      if (manifest) return manifest;
    }
  }
  return undefined;
}

/**
 * Exports the inventory and stores it when it changed. Safe to retry: a retry after the commit finds its own export
 * as the newest and writes nothing; one before the commit writes a new export (the unfinished folder holds no manifest).
 */
export async function runConnectorCheckpoint(deps: Dependencies, input: CheckpointRecordingsInput, signal?: AbortSignal): Promise<CheckpointConnectorsResult> {
  const { deployment } = input;
  const target = targetOf(deps, deployment, input.target);
  const keyRing = deps.keyRing();
  const inventory = await exportConnectors(deps, target, signal);
  const exportedAt = deps.now().toISOString();
  const databaseAt = await databaseClockOf(deps, target);
  const canonical = Buffer.from(canonicalJson(inventory));
  const digest = inventoryDigest(inventory);
  const newest = await newestExport(deps, deployment);
  if (newest && newest.connectors.digest === digest) {
    return { changed: false, exportId: newest.exportId, exportedAt: newest.exportedAt, ...(newest.databaseAt ? { databaseAt: newest.databaseAt } : {}), connectors: inventory.connectors.length, locations: [] };
  }
  const exportId = pointInTimeId(new Date(exportedAt), randomBytes(3).toString('hex'));
  const dataKey = generateDataKey();
  const locations = deps.locations();
  const written = await writeArtifactToEach(locations, CONNECTOR_EXPORT_KIND.key(deployment, exportId, CONNECTOR_EXPORT_ARTIFACT), canonical, dataKey, signal ? { signal } : {});
  const primary = primaryLocation(deps);
  if (!written.written.includes(primary.name)) throw written.failed.find((f) => f.location === primary.name)!.error;
  const committing = locations.filter((l) => written.written.includes(l.name));
  const manifest: ConnectorExportManifest = {
    format: 1,
    kind: 'connector-export',
    deployment,
    exportId,
    exportedAt,
    ...(databaseAt ? { databaseAt } : {}),
    committedAt: deps.now().toISOString(),
    encryption: { cipher: 'AES-256-GCM', framing: 'VPB1', dataKey: keyRing.wrap(dataKey) },
    artifacts: { connectors: written.artifact },
    connectors: { count: inventory.connectors.length, digest },
    locations: committing.map((l) => ({ name: l.name, region: l.region })),
  };
  const committed = await writePointManifest(committing, CONNECTOR_EXPORT_KIND, manifest, keyRing);
  if (!committed.written.includes(primary.name)) throw committed.failed.find((f) => f.location === primary.name)!.error;
  return { changed: true, exportId, exportedAt, ...(databaseAt ? { databaseAt } : {}), connectors: inventory.connectors.length, locations: committed.written };
}

/** The inventory an export holds, from the first of its locations where it reads and checks whole. */
export async function readConnectorExport(deps: Dependencies, found: PointAt<ConnectorExportManifest>): Promise<ConnectorInventory> {
  const dataKey = unwrapKey(found.manifest.encryption.dataKey, deps.keyRing());
  const problems: string[] = [];
  for (const location of found.locations) {
    try {
      const text = (await readAll(await openArtifact(location, found.manifest.artifacts.connectors, dataKey))).toString('utf8');
      return connectorInventorySchema.parse(JSON.parse(text));
    } catch (err) {
      problems.push(`${location.name}: ${(err as Error).message}`);
    }
  }
  throw new Error(`connector export ${found.id} reads at no location: ${problems.join('; ')}`);
}

export function createCheckpointConnectorsActivities(deps: Dependencies) {
  return {
    /** One connector export, stored only when the inventory changed; the result holds no inventory. */
    async checkpointConnectors(input: CheckpointRecordingsInput): Promise<CheckpointConnectorsResult> {
      const ctx = Context.current();
      ctx.heartbeat({ phase: 'export' });
      return runConnectorCheckpoint(deps, input, ctx.cancellationSignal);
    },
  };
}
