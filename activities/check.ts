// The repository check's bookends: what there is to check (every manifest in every location), the record of the last
// check in each location, and the slice a scheduled check reads next.
import { readAll } from '../src/catalog/artifacts';
import type { Dependencies } from '../src/runtime/dependencies';
import { backupsPrefix, isNotFound, lastCheckKey, parseManifestKey, type BackupLocation } from '../src/storage';
import type { CheckReport } from '../workflows/check-types';
import { createBackupCheckActivities } from './check-backup';
import { createOrphanCheckActivities } from './check-orphans';
import { createPointCheckActivities } from './check-points';

export interface CheckTargets {
  /** Every backup id with a manifest object in some location, oldest first (ids start with their UTC time). */
  backupIds: string[];
  locations: string[];
  /** Locations that could not be listed. */
  unavailable: { location: string; detail: string }[];
}

/** What `<deployment>/checks/last.json` holds: the last check's report (bounded, as in the history), for metrics. */
export type LastCheckRecord = CheckReport & {
  /** The slice the last scheduled check read, carried over by checks run by hand so the rotation goes on. */
  lastScheduledSlice?: { slice: number; of: number; finishedAt: string };
};

async function readLastCheck(location: BackupLocation, deployment: string): Promise<LastCheckRecord | undefined> {
  try {
    return JSON.parse((await readAll(await location.get(lastCheckKey(deployment)))).toString('utf8')) as LastCheckRecord;
  } catch (err) {
    if (isNotFound(err) || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

export function createCheckActivities(deps: Dependencies) {
  return {
    ...createBackupCheckActivities(deps),
    ...createOrphanCheckActivities(deps),
    ...createPointCheckActivities(deps),

    async listCheckTargets(input: { deployment: string }): Promise<CheckTargets> {
      const ids = new Set<string>();
      const unavailable: CheckTargets['unavailable'] = [];
      for (const location of deps.locations()) {
        try {
          for await (const item of location.list(backupsPrefix(input.deployment))) {
            const parsed = parseManifestKey(input.deployment, item.key);
            if (parsed) ids.add(parsed.backupId);
          }
        } catch (err) {
          unavailable.push({ location: location.name, detail: (err as Error).message });
        }
      }
      return { backupIds: [...ids].sort(), locations: deps.locations().map((l) => l.name), unavailable };
    },

    /** Written in every location it can reach; a location that refuses is named in the answer, not an error. */
    async recordCheckResult(input: { deployment: string; report: CheckReport }): Promise<{ written: string[]; failed: { location: string; detail: string }[] }> {
      const rest = input.report;
      const written: string[] = [];
      const failed: { location: string; detail: string }[] = [];
      for (const location of deps.locations()) {
        try {
          const scheduled = rest.scheduledSlice ? { ...rest.scheduledSlice, finishedAt: rest.finishedAt } : (await readLastCheck(location, input.deployment))?.lastScheduledSlice;
          const record: LastCheckRecord = { ...rest, ...(scheduled ? { lastScheduledSlice: scheduled } : {}) };
          await location.put(lastCheckKey(input.deployment), Buffer.from(JSON.stringify(record, null, 2)));
          written.push(location.name);
        } catch (err) {
          failed.push({ location: location.name, detail: (err as Error).message });
        }
      }
      return { written, failed };
    },

    /**
     * The slice the next scheduled check reads: the one after the last scheduled check's (recorded in last.json,
     * newest record across the locations), so `of` consecutive scheduled runs read every blob once whatever the cron.
     */
    async nextScheduledSlice(input: { deployment: string; of: number }): Promise<{ slice: number; of: number }> {
      let previous: LastCheckRecord['lastScheduledSlice'];
      for (const location of deps.locations()) {
        const record = await readLastCheck(location, input.deployment);
        if (record?.lastScheduledSlice && (!previous || record.lastScheduledSlice.finishedAt > previous.finishedAt)) previous = record.lastScheduledSlice;
      }
      return { slice: previous && previous.of === input.of ? (previous.slice % input.of) + 1 : 1, of: input.of };
    },
  };
}
