// Restore step 3, the recordings: the bucket made equal to the backup's index, newer objects moved to a quarantine
// prefix (never deleted), and the undo that puts them back.
import { Context } from '@temporalio/activity';
import type { TargetName } from '../src/config/load';
import { createDecryptStream } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { blobKey, type BackupLocation } from '../src/storage';
import type { ResolvedBackup } from '../workflows/restore-types';
import { TaskPool, backupDataKey, locationByName, primaryLocation, type IndexEntry } from './backup-context';
import { CLOCK_MARKER } from './dump';
import { journalArtifact, journalKey, writeJournal } from './restore-journal';
import { readJsonLines } from './sync';

/** Recordings a restore moves aside, never deletes: under the bucket's own reserved prefix, per restore. */
export const QUARANTINE_PREFIX = '.vaultpam-backup/quarantine/';

export const RESERVED_PREFIX = CLOCK_MARKER.split('/')[0]!;

type PlanEntry = { op: 'restore'; k: string } | { op: 'quarantine'; k: string };

/** Decrypts one recording blob of a backup into the target bucket under its original key. */
export async function putRecording(deps: Dependencies, target: TargetName, location: BackupLocation, deployment: string, entry: IndexEntry): Promise<void> {
  const client = deps.recordingsClient(target);
  const bucket = deps.deployment(target).recordings.bucket;
  const source = await location.get(blobKey(deployment, entry.b));
  const plain = source.pipe(createDecryptStream(Buffer.from(entry.bk, 'base64')));
  source.on('error', (err) => plain.destroy(err));
  await client.putObject(bucket, entry.k, plain, entry.s);
}

export function createRecordingsRestoreActivities(deps: Dependencies) {
  const journalLocation = (name: string | undefined) => (name ? locationByName(deps, name) : primaryLocation(deps));
  const recordings = (target: TargetName) => ({ client: deps.recordingsClient(target), bucket: deps.deployment(target).recordings.bucket });

  return {
    /**
     * Restore step 3: the bucket made equal to the backup's index. Objects the backup lacks (or holds otherwise) move
     * to the quarantine prefix; missing ones are decrypted back. The plan is journalled before anything moves.
     */
    async restoreRecordings(input: { target: TargetName; deployment: string; restoreId: string; backup: ResolvedBackup; journal?: string }): Promise<{ restored: number; quarantined: number; unchanged: number }> {
      const ctx = Context.current();
      const { client, bucket } = recordings(input.target);
      const journal = journalLocation(input.journal);
      const source = locationByName(deps, input.backup.location);
      const dataKey = await backupDataKey(deps, input.deployment, input.backup.backupId);

      let plan = await journalArtifact(journal, 'recordings-plan', input.deployment, input.restoreId);
      if (!plan) {
        // The backup's index (key -> etag) against the live listing; both fit in memory as keys and tags only.
        const wanted = new Map<string, string>();
        for await (const e of readJsonLines<IndexEntry>(source, input.backup.artifacts.recordingsIndex, dataKey)) wanted.set(e.k, e.e);
        const entries: PlanEntry[] = [];
        const listing = client.listObjectsV2(bucket, '', true) as AsyncIterable<{ name?: string; etag?: string }>;
        const seen = new Set<string>();
        for await (const item of listing) {
          if (!item.name || item.name.startsWith(RESERVED_PREFIX)) continue;
          seen.add(item.name);
          const etag = (item.etag ?? '').replace(/"/g, '');
          const backupEtag = wanted.get(item.name);
          if (backupEtag !== etag) {
            entries.push({ op: 'quarantine', k: item.name });
            if (backupEtag !== undefined) entries.push({ op: 'restore', k: item.name });
          }
        }
        for (const k of wanted.keys()) if (!seen.has(k)) entries.push({ op: 'restore', k });
        const body = Buffer.from(entries.map((e) => JSON.stringify(e)).join('\n') + (entries.length ? '\n' : ''));
        plan = await writeJournal(journal, deps, input.deployment, input.restoreId, 'recordings-plan', body);
      }

      const planKey = await journalKey(journal, deps, input.deployment, input.restoreId);
      const toRestore = new Set<string>();
      let quarantined = 0;
      // Quarantine first: a key both quarantined and restored must be moved aside before it is overwritten.
      for await (const e of readJsonLines<PlanEntry>(journal, plan, planKey)) {
        if (e.op === 'restore') {
          toRestore.add(e.k);
          continue;
        }
        const aside = `${QUARANTINE_PREFIX}${input.restoreId}/${e.k}`;
        const present = await client.statObject(bucket, e.k).catch(() => undefined);
        if (present) {
          await client.copyObject(bucket, aside, `/${bucket}/${encodeURI(e.k)}`);
          await client.removeObject(bucket, e.k);
        }
        quarantined += 1;
        ctx.heartbeat({ phase: 'quarantine', quarantined });
      }
      let restored = 0;
      const pool = new TaskPool(deps.config.backup.concurrency);
      for await (const entry of readJsonLines<IndexEntry>(source, input.backup.artifacts.recordingsIndex, dataKey)) {
        if (!toRestore.has(entry.k)) continue;
        await pool.run(async () => {
          await putRecording(deps, input.target, source, input.deployment, entry);
          restored += 1;
          ctx.heartbeat({ phase: 'restore', restored });
        });
      }
      await pool.drain();
      return { restored, quarantined, unchanged: Math.max(0, (await countObjects(client, bucket)) - restored) };
    },

    /** Undo of restoreRecordings, from its journal: restored objects removed, quarantined ones moved back. */
    async revertRecordings(input: { target: TargetName; deployment: string; restoreId: string; journal?: string }): Promise<{ removed: number; returned: number }> {
      const { client, bucket } = recordings(input.target);
      const journal = journalLocation(input.journal);
      const plan = await journalArtifact(journal, 'recordings-plan', input.deployment, input.restoreId);
      if (!plan) return { removed: 0, returned: 0 };
      const key = await journalKey(journal, deps, input.deployment, input.restoreId);
      let removed = 0;
      let returned = 0;
      for await (const e of readJsonLines<PlanEntry>(journal, plan, key)) {
        if (e.op !== 'restore') continue;
        await client.removeObject(bucket, e.k);
        removed += 1;
      }
      for await (const e of readJsonLines<PlanEntry>(journal, plan, key)) {
        if (e.op !== 'quarantine') continue;
        const aside = `${QUARANTINE_PREFIX}${input.restoreId}/${e.k}`;
        if (!(await client.statObject(bucket, aside).catch(() => undefined))) continue;
        await client.copyObject(bucket, e.k, `/${bucket}/${encodeURI(aside)}`);
        await client.removeObject(bucket, aside);
        returned += 1;
      }
      return { removed, returned };
    },

  };
}

async function countObjects(client: ReturnType<Dependencies['recordingsClient']>, bucket: string): Promise<number> {
  let n = 0;
  for await (const item of client.listObjectsV2(bucket, '', true) as AsyncIterable<{ name?: string }>) {
    if (item.name && !item.name.startsWith(RESERVED_PREFIX)) n += 1;
  }
  return n;
}

