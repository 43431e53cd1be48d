// Preflight: what the orchestrator finds at PostgreSQL, the recordings bucket, the control plane and each backup location.
import { log } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import { checkDumpCompatibility, findPgBinaries, pgToolVersion } from '../src/postgres/binaries';
import { connectClient, describeTarget, serverVersion } from '../src/postgres/connection';
import { checkReplicationAccess } from '../src/postgres/replication-access';
import type { Dependencies } from '../src/runtime/dependencies';
import { listBackups } from '../src/catalog/catalog';
import { databaseRecoveryPoint, pointInTimeWindow } from '../src/catalog/point-in-time-window';
import type { CheckResult } from '../workflows/preflight-types';

const KEY_TABLES = ['resources', 'safes', 'credentials', 'audit_log', 'sessions'] as const;

/** A failed check is a finding, not a crash: the message names what is wrong and what to do. */
type Finding = Omit<CheckResult, 'check' | 'ok'> & { ok?: boolean };

async function check(name: string, run: () => Promise<Finding>, hint: string): Promise<CheckResult> {
  try {
    const result = await run();
    return { check: name, ok: result.ok ?? true, ...result };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log.warn(`preflight check ${name} failed`, { message });
    return { check: name, ok: false, summary: message, hint, facts: {} };
  }
}

export function createPreflightActivities(deps: Dependencies) {
  return {
    async checkPostgres(target: TargetName): Promise<CheckResult> {
      const pgConfig = deps.deployment(target).postgres;
      return check(
        'postgres',
        async () => {
          const client = await connectClient(pgConfig, deps.postgresPassword(target));
          try {
            const version = await serverVersion(client);
            const { rows } = await client.query<{ size: string }>('SELECT pg_database_size(current_database())::text AS size');
            const present = await client.query<{ name: string }>(
              'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1)',
              [KEY_TABLES],
            );
            const bins = findPgBinaries(pgConfig);
            const dumpVersion = await pgToolVersion(bins.pgDump);
            const compatibility = checkDumpCompatibility(version.versionNum, dumpVersion.major);
            const missing = KEY_TABLES.filter((t) => !present.rows.some((r) => r.name === t));
            // With point-in-time protection on, the cluster must also let the stream in: a refusal is named with its fix.
            const replication = deps.deployment(target).pointInTime?.enabled ? await checkReplicationAccess(pgConfig, deps.postgresPassword(target)) : undefined;
            const ok = compatibility.ok && missing.length === 0 && (replication?.ok ?? true);
            return {
              ok,
              summary: !compatibility.ok
                ? compatibility.message
                : missing.length
                  ? `tables missing from the VaultPAM schema: ${missing.join(', ')}`
                  : replication && !replication.ok
                    ? `point-in-time protection cannot stream from ${describeTarget(pgConfig)}: ${replication.problems.join('; ')}`
                    : `PostgreSQL ${version.text} ${describeTarget(pgConfig)}, pg_dump ${dumpVersion.major}.${dumpVersion.minor} compatible${replication ? ', replication for point-in-time protection accepted' : ''}`,
              ...(ok
                ? {}
                : { hint: !compatibility.ok ? 'install a matching PostgreSQL client' : missing.length ? 'point deployment.postgres.database at the VaultPAM database' : 'fix the replication settings named above, or set deployment.pointInTime.enabled to false' }),
              facts: {
                serverVersion: version.text,
                pgDump: bins.pgDump,
                pgDumpVersion: `${dumpVersion.major}.${dumpVersion.minor}`,
                databaseBytes: Number(rows[0]?.size ?? 0),
                ...(replication ? { walLevel: replication.facts.walLevel, replicationSlotsInUse: replication.facts.slotsInUse, maxReplicationSlots: replication.facts.maxReplicationSlots, replicationAccepted: replication.ok } : {}),
              },
            };
          } finally {
            await client.end().catch(() => undefined);
          }
        },
        `check deployment.postgres (host, port, database, user, password) of the ${target} deployment and that PostgreSQL is running`,
      );
    },

    async checkRecordings(target: TargetName): Promise<CheckResult> {
      const rec = deps.deployment(target).recordings;
      return check(
        'recordings',
        async (): Promise<Finding> => {
          const client = deps.recordingsClient(target);
          if (!(await client.bucketExists(rec.bucket))) {
            return { ok: false, summary: `bucket "${rec.bucket}" does not exist at ${rec.endPoint}:${rec.port}`, hint: 'set deployment.recordings.bucket to the recordings bucket', facts: {} };
          }
          // A bounded sample: preflight must stay quick whatever the bucket's size.
          let objects = 0;
          let bytes = 0;
          const stream = client.listObjectsV2(rec.bucket, '', true);
          for await (const item of stream as AsyncIterable<{ size?: number }>) {
            objects += 1;
            bytes += item.size ?? 0;
            if (objects >= 1000) break;
          }
          stream.destroy();
          return {
            summary: `bucket "${rec.bucket}" at ${rec.endPoint}:${rec.port} readable (${objects >= 1000 ? 'at least 1000' : objects} objects sampled)`,
            facts: { bucket: rec.bucket, sampledObjects: objects, sampledBytes: bytes },
          };
        },
        `check deployment.recordings (endPoint, port, accessKey, secretKey, bucket) of the ${target} deployment`,
      );
    },

    async checkControlPlane(target: TargetName): Promise<CheckResult> {
      const cp = deps.controlPlane(target);
      return check(
        'control-plane',
        async () => {
          const health = await cp.health();
          const maintenance = await cp.maintenance();
          const stats = await cp.stats();
          const inventory = await cp.exportConnectors();
          return {
            ok: !maintenance.enabled,
            summary: maintenance.enabled
              ? `control plane at ${cp.url} is in maintenance mode (${maintenance.reason ?? 'no reason given'})`
              : `control plane at ${cp.url} healthy: ${stats.resources} resources, ${stats.safes} Safes, ${stats.audit_log} audit entries, ${inventory.connectors.length} connectors`,
            ...(maintenance.enabled ? { hint: 'another backup or an operator holds maintenance mode; wait, or turn it off if it was left on' } : {}),
            facts: { status: health.status, ...pickNumbers(stats), connectors: inventory.connectors.length },
          };
        },
        `check deployment.controlPlane.url and token of the ${target} deployment and that VaultPAM is running`,
      );
    },

    /** The recovery point: how old the newest committed backup is, against backup.rpoHours. */
    async checkRecoveryPoint(deployment: string, options: { allowNoBackup?: boolean } = {}): Promise<CheckResult> {
      return check(
        'recovery-point',
        async (): Promise<Finding> => {
          const [newest] = await listBackups(deps.locations(), deployment);
          const rpoHours = deps.config.backup.rpoHours;
          if (!newest) {
            // No backup at all is the worst recovery point, not a pass; a new deployment's first run says so explicitly.
            const allowed = options.allowNoBackup === true;
            return {
              ok: allowed,
              summary: `no committed backup of ${deployment} yet (recovery point objective ${rpoHours} h)${allowed ? '; allowed for a first run' : ''}`,
              ...(allowed ? {} : { hint: 'nothing could be restored: run a backup now (vaultpam-backup backup --wait); on a new deployment pass --allow-no-backup (API: "allowNoBackup": true) to preflight before the first one' }),
              facts: { rpoHours, allowNoBackup: allowed },
            };
          }
          const ageHours = (deps.now().getTime() - new Date(newest.manifest.quiesce.recordingsPoint).getTime()) / 3_600_000;
          const ok = ageHours <= rpoHours;
          return {
            ok,
            summary: `newest backup ${newest.backupId} is ${ageHours.toFixed(1)} h old (objective ${rpoHours} h), in ${newest.locations.join(', ')}`,
            ...(ok ? {} : { hint: 'the recovery point objective is missed: run a backup now (vaultpam-backup backup --wait) and check the schedule (vaultpam-backup schedule show)' }),
            facts: { backupId: newest.backupId, ageHours: Number(ageHours.toFixed(2)), rpoHours },
          };
        },
        'check that the backup locations are readable',
      );
    },

    /**
     * With point-in-time protection on: the restorable window across the locations, refused when no moment is covered
     * or a WAL segment is missing (each named), and the database's recovery point from two locations.
     */
    async checkPointInTime(target: TargetName): Promise<CheckResult | undefined> {
      const deployment = deps.deployment(target);
      if (!deployment.pointInTime?.enabled) return undefined;
      return check(
        'point-in-time',
        async (): Promise<Finding> => {
          const window = await pointInTimeWindow(deps.locations(), deployment.name, deps.keyRing());
          const point = await databaseRecoveryPoint(deps.locations(), deployment.name, deps.keyRing(), deps.now());
          const gaps = window.gapCount ? `missing WAL segments: ${window.gaps.join(', ')}${window.gapCount > window.gaps.length ? ` and ${window.gapCount - window.gaps.length} more` : ''}` : '';
          const facts = {
            ...(window.window ? { windowFrom: window.window.from, windowTo: window.window.to } : {}),
            missingSegments: window.gapCount,
            ...(point ? { recoveryPointSeconds: Math.round(point.ageSeconds) } : {}),
          };
          if (!window.window) {
            return { ok: false, summary: `point-in-time protection of ${deployment.name} covers no moment: ${window.reason}${gaps ? `; ${gaps}` : ''}`, hint: 'start it (vaultpam-backup protect start) and let a base backup and the WAL after it reach the locations; a segment missing everywhere is recovered only by a new base backup after it', facts };
          }
          if (window.gapCount) {
            return { ok: false, summary: `point-in-time protection of ${deployment.name} has a gap: ${gaps}; restorable from ${window.window.from} to ${window.window.to}`, hint: 'a stream resumed after a crash closes its own gap within a slice; a segment missing everywhere is not recoverable: moments after it need a new base backup (restart protection to take one)', facts };
          }
          return {
            summary: `point-in-time protection of ${deployment.name} restorable from ${window.window.from} to ${window.window.to}${point ? `, recovery point ${Math.round(point.ageSeconds)} s from ${point.locations.join(' and ')}` : ', but not yet from two locations'}`,
            ok: point !== undefined,
            ...(point ? {} : { hint: 'only one location holds the stream: check the other locations (vaultpam-backup protect status)' }),
            facts,
          };
        },
        'check that the backup locations are readable and that protection runs (vaultpam-backup protect status)',
      );
    },

    async checkLocations(): Promise<CheckResult[]> {
      const locations = deps.locations();
      const results = await Promise.all(
        locations.map((location) =>
          check(
            `location:${location.name}`,
            async () => {
              await location.ensureReady();
              const probe = `.preflight/${deps.now().toISOString().replace(/[:.]/g, '-')}`;
              await location.put(probe, Buffer.from('vaultpam-backup preflight'));
              const back = await location.stat(probe);
              await location.delete([probe]);
              if (!back || back.size !== 25) throw new Error(`a probe object written to ${location.describe()} read back as ${back ? `${back.size} bytes` : 'missing'}`);
              return { summary: `${location.describe()} writable`, facts: { region: location.region, kind: location.kind } };
            },
            `check locations[].${location.name} in the configuration and that the storage is reachable and writable`,
          ),
        ),
      );
      const regions = new Set(locations.map((l) => l.region));
      results.push({
        check: 'regions',
        ok: regions.size >= 2,
        summary: `${locations.length} locations in ${regions.size} regions (${[...regions].join(', ')})`,
        ...(regions.size >= 2 ? {} : { hint: 'a complete backup needs locations in at least two regions: add a location with another region label' }),
        facts: { locations: locations.length, regions: regions.size },
      });
      return results;
    },
  };
}

function pickNumbers(record: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).filter((e): e is [string, number] => typeof e[1] === 'number'));
}
