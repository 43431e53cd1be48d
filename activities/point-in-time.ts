// "As of a moment": the recordings checkpoint and the connector export in force at a moment, read from the first
// location where they authenticate and falling back to another per object.
import { ApplicationFailure } from '@temporalio/activity';
import { CHECKPOINT_KIND, CONNECTOR_EXPORT_KIND, type CheckpointManifest, type ConnectorExportManifest } from '../src/catalog/checkpoint-manifest';
import { MomentOutOfRangeError, pointAt, type PointAt } from '../src/catalog/point-in-time-catalog';
import { readRecordingsIndex, type IndexEntry } from '../src/catalog/recordings-index';
import { unwrapKey } from '../src/crypto';
import { pointInTimeWindow } from '../src/catalog/point-in-time-window';
import type { Dependencies } from '../src/runtime/dependencies';
import { POINT_IN_TIME_OUTSIDE_WINDOW } from './point-in-time-context';

/** The newest recordings checkpoint whose moment is at or before `at`; MomentOutOfRangeError names the covered range. */
export async function checkpointAt(deps: Dependencies, deployment: string, at: Date): Promise<PointAt<CheckpointManifest>> {
  return pointAt(deps.locations(), CHECKPOINT_KIND, deployment, at, deps.keyRing());
}

/** The newest connector export at or before `at`; MomentOutOfRangeError names the range the exports cover. */
export async function connectorExportAt(deps: Dependencies, deployment: string, at: Date): Promise<PointAt<ConnectorExportManifest>> {
  return pointAt(deps.locations(), CONNECTOR_EXPORT_KIND, deployment, at, deps.keyRing());
}

/**
 * The checkpoint's index lines in key order. The index is the same bytes in every location, so when a location fails
 * mid-way the next one is read from the same line on: one bad copy costs a re-read, not the restore.
 */
export async function* checkpointEntries(deps: Dependencies, found: PointAt<CheckpointManifest>): AsyncGenerator<IndexEntry> {
  const dataKey = unwrapKey(found.manifest.encryption.dataKey, deps.keyRing());
  let yielded = 0;
  const problems: string[] = [];
  for (const location of found.locations) {
    let line = 0;
    try {
      for await (const entry of readRecordingsIndex(location, found.manifest.artifacts.recordingsIndex, dataKey)) {
        line += 1;
        if (line <= yielded) continue;
        yielded += 1;
        yield entry;
      }
      return;
    } catch (err) {
      problems.push(`${location.name}: ${(err as Error).message}`);
    }
  }
  throw new Error(`the index of checkpoint ${found.id} reads whole at no location: ${problems.join('; ')}`);
}

/** Where a restore to a moment comes from: a backup made from point-in-time protection, or the newest backup at or before it. */
export type RestoreSource = { kind: 'point-in-time'; window: { from: string; to: string } } | { kind: 'backups' };

/** What a restore to a moment would read, small enough for a workflow's history (no key, no listing). */
export interface PointInTimeSelection {
  at: string;
  /** `coveredAt` is the bucket's clock; `databaseAt` the database's, read beside it (what the moment is compared with). */
  checkpoint: { checkpointId: string; coveredAt: string; databaseAt?: string; objects: number; locations: string[] };
  connectors: { exportId: string; exportedAt: string; databaseAt?: string; count: number; locations: string[] };
}

export function createPointInTimeActivities(deps: Dependencies) {
  return {
    /**
     * Where a restore of `deployment` to `at` comes from. With point-in-time protection on, from the streams: a moment
     * outside the database's covered window is refused here, naming the window, before anything is written. Without
     * it, from the newest backup taken at or before the moment.
     */
    async restoreSourceAt(input: { deployment: string; at: string }): Promise<RestoreSource> {
      const deployment = deps.deployment('production');
      if (deployment.name !== input.deployment || !deployment.pointInTime?.enabled) return { kind: 'backups' };
      const at = new Date(input.at);
      if (Number.isNaN(at.getTime())) {
        throw ApplicationFailure.create({ type: 'RestoreInputInvalid', nonRetryable: true, message: `"${input.at}" is not a moment: give an ISO 8601 time, e.g. 2026-12-02T04:00:00Z` });
      }
      const window = await pointInTimeWindow(deps.locations(), input.deployment, deps.keyRing());
      const gaps = window.gapCount ? `; missing WAL segments: ${window.gaps.join(', ')}${window.gapCount > window.gaps.length ? ` and ${window.gapCount - window.gaps.length} more` : ''}` : '';
      if (!window.window || at < new Date(window.window.from) || at > new Date(window.window.to)) {
        const covered = window.window ? `the covered window is ${window.window.from} to ${window.window.to}` : `no window is covered yet (${window.reason})`;
        throw ApplicationFailure.create({
          type: POINT_IN_TIME_OUTSIDE_WINDOW,
          nonRetryable: true,
          message: `${input.at} is outside what point-in-time protection of ${input.deployment} covers: ${covered}${gaps}. A backup taken before then is restored with --backup <id> (see vaultpam-backup backups list)`,
        });
      }
      return { kind: 'point-in-time', window: { from: window.window.from, to: window.window.to } };
    },


    /** The checkpoint and connector export a restore to `at` uses; a moment out of range fails naming the range. */
    async selectPointInTime(input: { deployment: string; at: string }): Promise<PointInTimeSelection> {
      const at = new Date(input.at);
      if (Number.isNaN(at.getTime())) {
        throw ApplicationFailure.create({ type: 'RestoreInputInvalid', nonRetryable: true, message: `"${input.at}" is not a moment: give an ISO 8601 time, e.g. 2026-12-02T04:00:00Z` });
      }
      try {
        const checkpoint = await checkpointAt(deps, input.deployment, at);
        const connectors = await connectorExportAt(deps, input.deployment, at);
        return {
          at: at.toISOString(),
          checkpoint: { checkpointId: checkpoint.id, coveredAt: checkpoint.manifest.coveredAt, ...(checkpoint.manifest.databaseAt ? { databaseAt: checkpoint.manifest.databaseAt } : {}), objects: checkpoint.manifest.recordings.objects, locations: checkpoint.locations.map((l) => l.name) },
          connectors: { exportId: connectors.id, exportedAt: connectors.manifest.exportedAt, ...(connectors.manifest.databaseAt ? { databaseAt: connectors.manifest.databaseAt } : {}), count: connectors.manifest.connectors.count, locations: connectors.locations.map((l) => l.name) },
        };
      } catch (err) {
        if (err instanceof MomentOutOfRangeError) throw ApplicationFailure.create({ type: 'MomentOutOfRange', nonRetryable: true, message: err.message });
        throw err;
      }
    },
  };
}
