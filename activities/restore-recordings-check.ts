// Before a full restore stops anything: every recording blob it will read checked (presence, size, header key check)
// at the location the backup verified at, then at the others; the recordings found nowhere are journalled and named.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Context } from '@temporalio/activity';
import type { Dependencies } from '../src/runtime/dependencies';
import type { RecordingsCheck, ResolvedBackup } from '../workflows/restore-types';
import { backupDataKey, locationByName, primaryLocation } from './backup-context';
import { blobProblem, locationsInOrder } from './recording-source';
import { readRecordingsIndex, type IndexEntry } from '../src/catalog/recordings-index';
import { writeJournal } from './restore-journal';
import { LISTED_AT_MOST, UNRECOVERABLE_JOURNAL } from './restore-recordings';

type CheckOutcome = { entry: IndexEntry; problems: { location: string; problem: string }[]; servedBy?: string } | { error: unknown };

export function createRecordingsCheckActivities(deps: Dependencies) {
  return {
    /** Reads only headers and sizes; writes only the restore's own journal. Safe to run again: it starts over. */
    async checkRecordingBlobs(input: { deployment: string; restoreId: string; backup: ResolvedBackup; journal?: string }): Promise<RecordingsCheck> {
      const ctx = Context.current();
      const journal = input.journal ? locationByName(deps, input.journal) : primaryLocation(deps);
      const locations = locationsInOrder(deps, input.backup.location);
      const dataKey = await backupDataKey(deps, input.deployment, input.backup.backupId);
      const digest = createHash('sha256');
      const result: RecordingsCheck = { checked: 0, elsewhere: 0, unrecoverable: { count: 0, digest: '', recordings: [] } };

      async function check(entry: IndexEntry): Promise<CheckOutcome> {
        // Never rejects: an outcome waits in the window for its turn, and a rejection there would be unhandled.
        const problems: { location: string; problem: string }[] = [];
        let unanswered: unknown;
        for (const location of locations) {
          try {
            const problem = await blobProblem(location, input.deployment, entry);
            if (!problem) return { entry, problems, servedBy: location.name };
            problems.push({ location: location.name, problem });
          } catch (error) {
            unanswered ??= error;
            problems.push({ location: location.name, problem: (error as Error).message });
          }
        }
        // Lost only if every location answered: one that did not may hold it, and the check is retried.
        if (unanswered !== undefined) return { error: new Error(`recording ${entry.key} could not be checked at every location: ${problems.map((p) => `${p.location}: ${p.problem}`).join('; ')}`) };
        return { entry, problems };
      }

      // Checks run concurrently in a bounded window; outcomes are taken in index order, so the journal stays sorted.
      async function* unrecoverableLines(): AsyncGenerator<Buffer> {
        const window: Promise<CheckOutcome>[] = [];
        const settle = async function* (outcome: CheckOutcome): AsyncGenerator<Buffer> {
          if ('error' in outcome) throw outcome.error;
          result.checked += 1;
          if (result.checked % 200 === 0) ctx.heartbeat({ phase: 'check-blobs', checked: result.checked });
          if (outcome.servedBy) {
            if (outcome.problems.length > 0) result.elsewhere += 1;
            return;
          }
          result.unrecoverable.count += 1;
          digest.update(`${outcome.entry.key}\n`);
          if (result.unrecoverable.recordings.length < LISTED_AT_MOST) result.unrecoverable.recordings.push({ key: outcome.entry.key, problems: outcome.problems });
          yield Buffer.from(`${JSON.stringify({ key: outcome.entry.key })}\n`);
        };
        for await (const entry of readRecordingsIndex(locationByName(deps, input.backup.location), input.backup.artifacts.recordingsIndex, dataKey)) {
          window.push(check(entry));
          if (window.length >= deps.config.backup.concurrency) yield* settle(await window.shift()!);
        }
        while (window.length > 0) yield* settle(await window.shift()!);
      }

      await writeJournal(journal, deps, input.deployment, input.restoreId, UNRECOVERABLE_JOURNAL, Readable.from(unrecoverableLines()));
      result.unrecoverable.digest = digest.digest('hex');
      ctx.heartbeat({ phase: 'check-blobs', checked: result.checked });
      return result;
    },
  };
}
