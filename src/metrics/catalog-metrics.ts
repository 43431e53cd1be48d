// The API's Prometheus gauges: recovery point per location, the newest backup's size and duration, the last drill and
// the last check, read from the locations themselves (and Temporal for drills), cached so scrapes stay cheap.
import { databaseBytes } from '../catalog/database-parts';
import type { Client } from '@temporalio/client';
import { Gauge, Registry } from 'prom-client';
import { listBackups, type CatalogEntry } from '../catalog/catalog';
import { recordingsRecoveryPoint } from '../catalog/point-in-time-catalog';
import { databaseRecoveryPoint } from '../catalog/point-in-time-window';
import type { KeyRing } from '../crypto';
import type { BackupLocation } from '../storage';
import { readLastCheck, type LastCheck } from './last-check';
import type { DrillReport } from '../../workflows/restore-drill';

export interface CatalogMetricsOptions {
  /** The deployment whose backups are counted (the `deployment` label). */
  deployment: string;
  /** The staging deployment restore drills go into; without it no drill is looked for. */
  stagingDeployment?: string;
  locations: () => readonly BackupLocation[];
  /** The clock ages are measured by (the dependencies' now(), so tests can move it). */
  now: () => Date;
  /** Temporal, for the last restore drill's result; without it the drill gauges stay absent. */
  client?: Client;
  /** The master keys, to authenticate checkpoint manifests; without them the recordings recovery point stays absent. */
  keyRing?: () => KeyRing;
  /** How long one read of the locations serves scrapes. @default 30000 */
  cacheMs?: number;
}

interface LocationReading {
  name: string;
  readable: boolean;
  /** This location's committed backups, newest first (empty when unreadable). */
  backups: CatalogEntry[];
  check?: LastCheck;
}

interface Reading {
  locations: LocationReading[];
  /** The moment the newest recordings checkpoint held (and authenticated) in two locations covers. */
  recordingsPoint?: number;
  /** The newest moment the database can be recovered to from two locations (point-in-time protection's WAL). */
  databasePoint?: number;
  drill?: { rtoMs: number | undefined; closedAt: Date };
}

/** The instant a backup stands for: its consistent point, which a restore brings the deployment back to. */
function pointOf(entry: CatalogEntry): number {
  return new Date(entry.manifest.quiesce.recordingsPoint).getTime();
}

async function readLocation(location: BackupLocation, deployment: string): Promise<LocationReading> {
  let backups: CatalogEntry[];
  try {
    backups = await listBackups([location], deployment, { strict: true });
  } catch {
    return { name: location.name, readable: false, backups: [] };
  }
  const check = await readLastCheck(location, deployment).catch(() => undefined);
  return { name: location.name, readable: true, backups, ...(check ? { check } : {}) };
}

async function readLastDrill(client: Client, stagingDeployment: string): Promise<Reading['drill']> {
  const query = `WorkflowType = 'restoreDrillWorkflow' AND ExecutionStatus = 'Completed' AND VaultpamDeployment = '${stagingDeployment}'`;
  let newest: { workflowId: string; runId: string; closedAt: Date } | undefined;
  for await (const execution of client.workflow.list({ query, pageSize: 20 })) {
    if (execution.closeTime && (!newest || execution.closeTime > newest.closedAt)) newest = { workflowId: execution.workflowId, runId: execution.runId, closedAt: execution.closeTime };
  }
  if (!newest) return undefined;
  const report = (await client.workflow.getHandle(newest.workflowId, newest.runId).result()) as DrillReport;
  return { rtoMs: report.rtoMs, closedAt: newest.closedAt };
}

/** A registry whose gauges are computed at scrape time from a cached reading of the catalog. */
export function createCatalogMetrics(options: CatalogMetricsOptions): Registry {
  const registry = new Registry();
  const cacheMs = options.cacheMs ?? 30_000;
  const { deployment } = options;
  let cached: { at: number; reading: Promise<Reading> } | undefined;

  const reading = (): Promise<Reading> => {
    const at = Date.now();
    if (!cached || at - cached.at >= cacheMs) {
      const fresh = (async (): Promise<Reading> => {
        const locations = await Promise.all(options.locations().map((location) => readLocation(location, deployment)));
        const drill = options.client && options.stagingDeployment ? await readLastDrill(options.client, options.stagingDeployment).catch(() => undefined) : undefined;
        const checkpoint = options.keyRing ? await recordingsRecoveryPoint(options.locations(), deployment, options.keyRing(), options.now()).catch(() => undefined) : undefined;
        const wal = options.keyRing ? await databaseRecoveryPoint(options.locations(), deployment, options.keyRing(), options.now()).catch(() => undefined) : undefined;
        return {
          locations,
          ...(drill ? { drill } : {}),
          ...(checkpoint ? { recordingsPoint: new Date(checkpoint.coveredAt).getTime() } : {}),
          ...(wal ? { databasePoint: Date.parse(wal.to) } : {}),
        };
      })();
      cached = { at, reading: fresh };
      // A failed reading is not kept: the next scrape tries again.
      fresh.catch(() => {
        if (cached?.reading === fresh) cached = undefined;
      });
    }
    return cached.reading;
  };
  const ageSeconds = (ms: number) => Math.max(0, (options.now().getTime() - ms) / 1000);

  new Gauge({
    name: 'vaultpam_backup_newest_verified_age_seconds',
    help: 'Seconds since the consistent point of the newest committed (verified) backup held by this location; absent when the location holds none',
    labelNames: ['deployment', 'location'],
    registers: [registry],
    async collect() {
      const r = await reading();
      this.reset();
      for (const l of r.locations) if (l.backups[0]) this.set({ deployment, location: l.name }, ageSeconds(pointOf(l.backups[0])));
    },
  });

  new Gauge({
    name: 'vaultpam_backup_newest_restorable_moment_age_seconds',
    help: 'Seconds since the newest moment the deployment can be restored to: for now the consistent point of the newest backup held by at least two locations (a point-in-time recovery feature will refine it); absent when no backup is held twice',
    labelNames: ['deployment'],
    registers: [registry],
    async collect() {
      const r = await reading();
      this.reset();
      const holders = new Map<string, { entry: CatalogEntry; count: number }>();
      for (const l of r.locations) {
        for (const entry of l.backups) {
          const seen = holders.get(entry.backupId);
          holders.set(entry.backupId, { entry, count: (seen?.count ?? 0) + 1 });
        }
      }
      const twice = [...holders.values()].filter((h) => h.count >= 2).map((h) => pointOf(h.entry));
      if (twice.length > 0) this.set({ deployment }, ageSeconds(Math.max(...twice)));
    },
  });

  new Gauge({
    name: 'vaultpam_recordings_recovery_point_seconds',
    help: 'Seconds since the moment covered by the newest recordings checkpoint whose manifest authenticates in at least two locations; absent when there is none',
    labelNames: ['deployment'],
    registers: [registry],
    async collect() {
      const r = await reading();
      this.reset();
      if (r.recordingsPoint !== undefined) this.set({ deployment }, ageSeconds(r.recordingsPoint));
    },
  });

  new Gauge({
    name: 'vaultpam_database_recovery_point_seconds',
    help: 'Seconds since the newest moment the database can be recovered to from at least two locations (base backups plus streamed WAL, each location on its own); absent without point-in-time protection',
    labelNames: ['deployment'],
    registers: [registry],
    async collect() {
      const r = await reading();
      this.reset();
      if (r.databasePoint !== undefined) this.set({ deployment }, ageSeconds(r.databasePoint));
    },
  });

  const newest = async (): Promise<CatalogEntry | undefined> => {
    const r = await reading();
    return r.locations.flatMap((l) => l.backups.slice(0, 1)).sort((a, b) => pointOf(b) - pointOf(a))[0];
  };

  new Gauge({
    name: 'vaultpam_backup_newest_duration_seconds',
    help: 'Seconds the newest committed backup took, from its start to its commit',
    labelNames: ['deployment'],
    registers: [registry],
    async collect() {
      const entry = await newest();
      this.reset();
      if (entry) this.set({ deployment }, (new Date(entry.manifest.committedAt).getTime() - new Date(entry.manifest.startedAt).getTime()) / 1000);
    },
  });

  new Gauge({
    name: 'vaultpam_backup_newest_bytes',
    help: 'Size of the newest committed backup: part="database" the dump (plaintext bytes), part="recordings" the recordings it holds, part="recordings_copied" those it copied (the rest shared with the previous backup)',
    labelNames: ['deployment', 'part'],
    registers: [registry],
    async collect() {
      const entry = await newest();
      this.reset();
      if (!entry) return;
      this.set({ deployment, part: 'database' }, databaseBytes(entry.manifest.artifacts));
      this.set({ deployment, part: 'recordings' }, entry.manifest.recordings.bytes);
      this.set({ deployment, part: 'recordings_copied' }, entry.manifest.recordings.copiedBytes);
    },
  });

  new Gauge({
    name: 'vaultpam_backups_committed',
    help: 'Committed backups held by the location',
    labelNames: ['deployment', 'location'],
    registers: [registry],
    async collect() {
      const r = await reading();
      this.reset();
      for (const l of r.locations) if (l.readable) this.set({ deployment, location: l.name }, l.backups.length);
    },
  });

  new Gauge({
    name: 'vaultpam_location_readable',
    help: '1 when the location could be listed and its manifests read at the last reading, else 0',
    labelNames: ['deployment', 'location'],
    registers: [registry],
    async collect() {
      const r = await reading();
      this.reset();
      for (const l of r.locations) this.set({ deployment, location: l.name }, l.readable ? 1 : 0);
    },
  });

  new Gauge({
    name: 'vaultpam_restore_drill_last_rto_seconds',
    help: 'Recovery time of the newest completed restore drill (stop to smoke test passed); absent before the first drill',
    labelNames: ['deployment'],
    registers: [registry],
    async collect() {
      const r = await reading();
      this.reset();
      if (r.drill?.rtoMs !== undefined) this.set({ deployment }, r.drill.rtoMs / 1000);
    },
  });

  new Gauge({
    name: 'vaultpam_restore_drill_last_success_age_seconds',
    help: 'Seconds since the newest restore drill completed; absent before the first drill',
    labelNames: ['deployment'],
    registers: [registry],
    async collect() {
      const r = await reading();
      this.reset();
      if (r.drill) this.set({ deployment }, ageSeconds(r.drill.closedAt.getTime()));
    },
  });

  const lastCheck = (name: string, help: string, value: (check: LastCheck) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['deployment', 'location'],
      registers: [registry],
      async collect() {
        const r = await reading();
        this.reset();
        for (const l of r.locations) if (l.check) this.set({ deployment, location: l.name }, value(l.check));
      },
    });
  lastCheck('vaultpam_check_last_ok', '1 when the newest check (<deployment>/checks/last.json in the location) passed, 0 when it failed; absent when no check result exists', (c) => (c.ok ? 1 : 0));
  lastCheck('vaultpam_check_last_problems', 'Problems the newest check left unrepaired', (c) => c.remainingCount);
  lastCheck('vaultpam_check_last_age_seconds', 'Seconds since the newest check finished', (c) => ageSeconds(new Date(c.finishedAt).getTime()));

  return registry;
}
