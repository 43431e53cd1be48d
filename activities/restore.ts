// The restore's steps (seed restore steps 1-6, made reversible): resolve and verify a backup, count what would be
// lost, stop, restore the database by swap, restart, re-import connectors, verify, smoke-test; and the undo of each.
// The recordings step lives in restore-recordings.ts.
import { createHash } from 'node:crypto';
import { Context, activityInfo } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import { ArtifactChecksumError, openArtifact, readAll } from '../src/catalog/artifacts';
import { findBackupAt, listBackups } from '../src/catalog/catalog';
import { unwrapKey } from '../src/crypto';
import { createDatabase, databaseExists, dropDatabase, listDump, renameDatabase, withClient } from '../src/postgres';
import { restoreBackupDatabase } from './database-restore';
import { computeLossReport, lossReportDigest, type LossReport } from '../src/restore/loss-report';
import { ResourceRestoreError, resourceRecordingKeys, restoreResource } from '../src/restore/resource-restore';
import type { Dependencies } from '../src/runtime/dependencies';
import type { ConnectorInventory } from '../src/vaultpam/admin-api-schema';
import type { ResolvedBackup } from '../workflows/restore-types';
import { backupDataKey, locationByName, primaryLocation } from './backup-context';
import { locationsInOrder, putRecordingFromBackup } from './recording-source';
import { readRecordingsIndex } from '../src/catalog/recordings-index';
import { restoreFailure } from './restore-failure';
import { journalArtifact, journalKey, writeJournal } from './restore-journal';
import { RESERVED_PREFIX, createRecordingsRestoreActivities } from './restore-recordings';
import { createRecordingsCheckActivities } from './restore-recordings-check';
import { verifyChecksums } from './verify';

function shortId(restoreId: string): string {
  return createHash('sha256').update(restoreId).digest('hex').slice(0, 8);
}

/** Names of the databases a full restore works with: the restored copy, and the live one set aside. */
export function restoreDatabaseNames(live: string, restoreId: string) {
  const s = shortId(restoreId);
  return { restored: `${live}_r_${s}`.slice(0, 63), previous: `${live}_pre_${s}`.slice(0, 63), rolledBack: `${live}_rb_${s}`.slice(0, 63), scratch: `vpb_scratch_${s}` };
}

export { QUARANTINE_PREFIX } from './restore-recordings';

export function createRestoreActivities(deps: Dependencies) {
  const journalLocation = (name: string | undefined) => (name ? locationByName(deps, name) : primaryLocation(deps));
  const recordings = (target: TargetName) => ({ client: deps.recordingsClient(target), bucket: deps.deployment(target).recordings.bucket });

  /**
   * The location a dump is streamed from: the one the backup verified at, then on each retry the next one. The dump
   * is checksummed as it streams, so a bad copy fails its attempt and the retry reads another copy.
   */
  const dumpSource = (verifiedAt: string) => {
    const sources = locationsInOrder(deps, verifiedAt);
    return sources[(activityInfo().attempt - 1) % sources.length]!;
  };

  return {
    ...createRecordingsRestoreActivities(deps),
    ...createRecordingsCheckActivities(deps),

    /** Restore step 1: the backup (by id or time), verified at one location, else at the next. Touches nothing. */
    async resolveBackup(input: { deployment: string; backupId?: string; at?: string }): Promise<ResolvedBackup> {
      if (!input.backupId === !input.at) throw restoreFailure('RestoreInputInvalid', 'give either a backup id or a time (--at), not both');
      const catalog = await listBackups(deps.locations(), input.deployment, { keyRing: deps.keyRing() });
      let chosen = input.backupId ? catalog.find((e) => e.backupId === input.backupId) : undefined;
      if (input.at) {
        const at = new Date(input.at);
        if (Number.isNaN(at.getTime())) throw restoreFailure('RestoreInputInvalid', `--at "${input.at}" is not a time (use ISO 8601, e.g. 2026-11-27T02:00:00Z)`);
        chosen = findBackupAt(catalog, at);
      }
      if (!chosen) {
        throw restoreFailure(
          'BackupNotFound',
          input.backupId
            ? `no location holds a committed backup ${input.backupId} of ${input.deployment} (list them with: vaultpam-backup backups list)`
            : `no committed backup of ${input.deployment} was taken at or before ${input.at}`,
        );
      }
      const manifest = chosen.manifest;
      const skipped: ResolvedBackup['skipped'] = [];
      for (const location of deps.locations()) {
        if (!chosen.locations.includes(location.name)) {
          skipped.push({ location: location.name, problem: 'no manifest of this backup here' });
          continue;
        }
        try {
          // The dump is read once: listing it hashes its stored bytes and authenticates every chunk on the way.
          const { db, ...others } = manifest.artifacts;
          await verifyChecksums(location, others, (bytes) => Context.current().heartbeat({ location: location.name, bytes }));
          const dataKey = unwrapKey(manifest.encryption.dataKey, deps.keyRing());
          try {
            await listDump(await openArtifact(location, db, dataKey), {
              config: deps.config.deployment.postgres,
              onProgress: (progress) => Context.current().heartbeat({ ...progress, location: location.name }),
            });
          } catch (err) {
            if (err instanceof ArtifactChecksumError) throw err;
            throw new Error(`${db.key} at ${location.describe()}: ${(err as Error).message}`);
          }
          return {
            backupId: manifest.backupId,
            startedAt: manifest.startedAt,
            recordingsPoint: manifest.quiesce.recordingsPoint,
            ...(manifest.quiesce.databasePoint ? { databasePoint: manifest.quiesce.databasePoint } : {}),
            location: location.name,
            skipped,
            artifacts: manifest.artifacts,
            rowCounts: manifest.postgres.rowCounts,
            recordings: { objects: manifest.recordings.objects, bytes: manifest.recordings.bytes },
          };
        } catch (err) {
          const cause = (err as { message?: string }).message ?? String(err);
          skipped.push({ location: location.name, problem: cause });
        }
      }
      throw restoreFailure('BackupCorrupt', `backup ${manifest.backupId} failed verification at every location: ${skipped.map((s) => `${s.location}: ${s.problem}`).join('; ')}`);
    },

    /** What exists now that is newer than the backup, and what the backup brings back: counts only, and their digest for the confirmation. */
    async computeLoss(input: { target: TargetName; since: string; databaseSince?: string; backup?: { rowCounts: Record<string, number>; recordings?: { objects: number; bytes: number } } }): Promise<{ report: LossReport; digest: string }> {
      const { client, bucket } = recordings(input.target);
      const report = await computeLossReport({
        config: deps.deployment(input.target).postgres,
        password: deps.postgresPassword(input.target),
        since: new Date(input.since),
        ...(input.databaseSince ? { databaseSince: input.databaseSince } : {}),
        recordings: { client, bucket, excludePrefixes: [`${RESERVED_PREFIX}/`] },
        ...(input.backup ? { backup: input.backup } : {}),
      });
      return { report, digest: lossReportDigest(report) };
    },

    /** Before anything stops: the current connector inventory, kept so a rollback can put it back. */
    async saveCurrentConnectors(input: { target: TargetName; deployment: string; restoreId: string; journal?: string }): Promise<void> {
      const location = journalLocation(input.journal);
      if (await journalArtifact(location, 'connectors-before', input.deployment, input.restoreId)) return;
      const inventory = await deps.controlPlane(input.target).exportConnectors();
      await writeJournal(location, deps, input.deployment, input.restoreId, 'connectors-before', Buffer.from(JSON.stringify(inventory)));
    },

    async stopServices(input: { target: TargetName }): Promise<void> {
      await deps.serviceControl(input.target).stop(Context.current().cancellationSignal);
    },

    /** Starts the control plane and waits until it answers /healthz. Idempotent. */
    async startServices(input: { target: TargetName }): Promise<void> {
      await deps.serviceControl(input.target).start();
      const cp = deps.controlPlane(input.target);
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await cp.health();
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },

    /**
     * Restore step 2: the dump into a new database, then swapped in by rename (the live one is set aside, not
     * dropped). Each state between the renames is recognised, so a retry after a crash at any line finishes the job.
     */
    async restoreDatabase(input: { target: TargetName; deployment: string; restoreId: string; backup: ResolvedBackup }): Promise<{ previousDatabase: string }> {
      const ctx = Context.current();
      const pgConfig = deps.deployment(input.target).postgres;
      const password = deps.postgresPassword(input.target);
      const live = pgConfig.database;
      const names = restoreDatabaseNames(live, input.restoreId);
      const exists = (name: string) => databaseExists(pgConfig, password, name);

      if ((await exists(names.previous)) && !(await exists(names.restored))) {
        if (await exists(live)) return { previousDatabase: names.previous };
        throw restoreFailure('RestoreStateInvalid', `neither ${live} nor ${names.restored} exists while ${names.previous} does; restore it by hand: ALTER DATABASE ${names.previous} RENAME TO ${live}`);
      }
      if (!(await exists(names.previous))) {
        await dropDatabase(pgConfig, password, names.restored, { ifExists: true, force: true });
        await createDatabase(pgConfig, password, names.restored);
        const location = dumpSource(input.backup.location);
        const dataKey = await backupDataKey(deps, input.deployment, input.backup.backupId);
        await restoreBackupDatabase({
          location,
          artifacts: input.backup.artifacts,
          dataKey,
          config: pgConfig,
          password,
          database: names.restored,
          jobs: deps.config.backup.parallelDump.jobs,
          signal: ctx.cancellationSignal,
          onProgress: (progress) => ctx.heartbeat({ ...progress, attempt: activityInfo().attempt }),
        });
        await renameDatabase(pgConfig, password, live, names.previous);
      }
      await renameDatabase(pgConfig, password, names.restored, live);
      return { previousDatabase: names.previous };
    },

    /**
     * Undo of restoreDatabase: the set-aside database back under the live name. The restored database is kept aside,
     * not dropped: since the control plane restarts before the recordings are back, it may have taken writes (new
     * sessions, audit entries) by the time a later step fails, and those are the operator's to look at. Safe to
     * repeat: each rename happens only while its source exists.
     */
    async swapBackDatabase(input: { target: TargetName; restoreId: string }): Promise<{ note?: string }> {
      const pgConfig = deps.deployment(input.target).postgres;
      const password = deps.postgresPassword(input.target);
      const live = pgConfig.database;
      const names = restoreDatabaseNames(live, input.restoreId);
      let keptAside = false;
      if (await databaseExists(pgConfig, password, names.previous)) {
        if (await databaseExists(pgConfig, password, live)) {
          if (await databaseExists(pgConfig, password, names.rolledBack)) await dropDatabase(pgConfig, password, live, { force: true });
          else await renameDatabase(pgConfig, password, live, names.rolledBack);
        }
        await renameDatabase(pgConfig, password, names.previous, live);
      }
      await dropDatabase(pgConfig, password, names.restored, { ifExists: true, force: true });
      keptAside = await databaseExists(pgConfig, password, names.rolledBack);
      return keptAside
        ? { note: `the restored database, with whatever was written to it before the rollback, is kept as "${names.rolledBack}"; drop it once nothing in it is needed (DROP DATABASE "${names.rolledBack}")` }
        : {};
    },

    async importConnectors(input: { target: TargetName; deployment: string; backup: ResolvedBackup }): Promise<{ count: number }> {
      const dataKey = await backupDataKey(deps, input.deployment, input.backup.backupId);
      // Small and checksummed whole before use: read from the first location whose copy verifies.
      const problems: string[] = [];
      let inventory: ConnectorInventory | undefined;
      for (const location of locationsInOrder(deps, input.backup.location)) {
        try {
          inventory = JSON.parse((await readAll(await openArtifact(location, input.backup.artifacts.connectors, dataKey))).toString('utf8')) as ConnectorInventory;
          break;
        } catch (err) {
          problems.push(`${location.name}: ${(err as Error).message}`);
        }
      }
      // Retryable: a location that did not answer may answer the next attempt.
      if (!inventory) throw new Error(`the connector inventory of backup ${input.backup.backupId} verifies at no location: ${problems.join('; ')}`);
      await deps.controlPlane(input.target).importConnectors(inventory);
      return { count: inventory.connectors.length };
    },

    /** Undo of importConnectors: the inventory saved before the restore began. */
    async importPreviousConnectors(input: { target: TargetName; deployment: string; restoreId: string; journal?: string }): Promise<void> {
      const journal = journalLocation(input.journal);
      const artifact = await journalArtifact(journal, 'connectors-before', input.deployment, input.restoreId);
      if (!artifact) return;
      const key = await journalKey(journal, deps, input.deployment, input.restoreId);
      const inventory = JSON.parse((await readAll(await openArtifact(journal, artifact, key))).toString('utf8')) as ConnectorInventory;
      await deps.controlPlane(input.target).importConnectors(inventory);
    },

    /** Seed restore step 5: resources, Safes and audit entries as the manifest says, read through the control plane. */
    async verifyRestore(input: { target: TargetName; expected: Record<string, number> }): Promise<{ expected: Record<string, number>; found: Record<string, number> }> {
      const stats = await deps.controlPlane(input.target).stats();
      const checked = ['resources', 'safes', 'audit_log', 'credentials', 'sessions'] as const;
      const expected: Record<string, number> = {};
      const found: Record<string, number> = {};
      for (const table of checked) {
        if (input.expected[table] === undefined) continue;
        expected[table] = input.expected[table];
        found[table] = stats[table];
      }
      const differing = Object.keys(expected).filter((t) => expected[t] !== found[t]);
      if (differing.length) {
        throw restoreFailure('RestoreVerifyFailed', `after the restore the control plane reports ${differing.map((t) => `${t}=${found[t]} (backup: ${expected[t]})`).join(', ')}`);
      }
      return { expected, found };
    },

    /** Seed restore step 6: a session launched against a known resource, and its recording present in the bucket. */
    async smokeTest(input: { target: TargetName }): Promise<{ resourceId: string; sessionId: string }> {
      const deployment = deps.deployment(input.target);
      const resourceId =
        deployment.controlPlane.smokeTestResourceId ??
        (await withClient(deployment.postgres, deps.postgresPassword(input.target), async (c) => (await c.query<{ id: string }>('SELECT id FROM resources ORDER BY created_at, id LIMIT 1')).rows[0]?.id));
      if (!resourceId) throw restoreFailure('SmokeTestFailed', 'the restored deployment has no resource to launch a session against; set deployment.controlPlane.smokeTestResourceId');
      let launch;
      try {
        launch = await deps.controlPlane(input.target).launchSession(resourceId);
      } catch (err) {
        throw restoreFailure('SmokeTestFailed', `a session launch against resource ${resourceId} failed: ${(err as Error).message}`);
      }
      const { client, bucket } = recordings(input.target);
      if (!(await client.statObject(bucket, launch.recordingKey).catch(() => undefined))) {
        throw restoreFailure('SmokeTestFailed', `the session ${launch.sessionId} launched but its recording ${launch.recordingKey} is not in bucket ${bucket}`);
      }
      return { resourceId, sessionId: launch.sessionId };
    },

    /**
     * A scoped restore: the dump into a scratch database, then one resource with its Safes, credentials, sessions,
     * audit entries and recordings copied into the live deployment, which keeps running. Idempotent (upserts).
     */
    async restoreOneResource(input: { target: TargetName; deployment: string; restoreId: string; backup: ResolvedBackup; resourceId: string }) {
      const ctx = Context.current();
      const pgConfig = deps.deployment(input.target).postgres;
      const password = deps.postgresPassword(input.target);
      const { scratch } = restoreDatabaseNames(pgConfig.database, input.restoreId);
      const location = locationByName(deps, input.backup.location);
      const dumpLocation = dumpSource(input.backup.location);
      const dataKey = await backupDataKey(deps, input.deployment, input.backup.backupId);
      await dropDatabase(pgConfig, password, scratch, { ifExists: true, force: true });
      await createDatabase(pgConfig, password, scratch);
      try {
        await restoreBackupDatabase({
          location: dumpLocation,
          artifacts: input.backup.artifacts,
          dataKey,
          config: pgConfig,
          password,
          database: scratch,
          jobs: deps.config.backup.parallelDump.jobs,
          signal: ctx.cancellationSignal,
          onProgress: (progress) => ctx.heartbeat(progress),
        });
        const keys = new Set(await resourceRecordingKeys({ config: pgConfig, password, database: scratch, resourceId: input.resourceId }));
        let result;
        try {
          result = await restoreResource({ config: pgConfig, password, scratchDatabase: scratch, liveDatabase: pgConfig.database, resourceId: input.resourceId, backupId: input.backup.backupId });
        } catch (err) {
          // A refusal (resource not in the backup, organisation gone) is final; a lost connection is retried.
          if (err instanceof ResourceRestoreError) throw restoreFailure('RestoreInputInvalid', err.message);
          throw err;
        }
        const { client, bucket } = recordings(input.target);
        let recordingsRestored = 0;
        const sources = locationsInOrder(deps, input.backup.location);
        for await (const entry of readRecordingsIndex(location, input.backup.artifacts.recordingsIndex, dataKey)) {
          if (!keys.has(entry.key)) continue;
          if (await client.statObject(bucket, entry.key).catch(() => undefined)) continue;
          await putRecordingFromBackup(deps, { client, bucket }, input.deployment, entry, sources, {});
          recordingsRestored += 1;
        }
        return { tables: result.tables, recordingsRestored };
      } finally {
        await dropDatabase(pgConfig, password, scratch, { ifExists: true, force: true }).catch(() => undefined);
      }
    },
  };
}
