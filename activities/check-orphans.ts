// Orphan and missing blobs at one location: the names every backup's index references, sorted on disk, merged with
// the location's sorted listing of blobs, so memory stays flat whatever the number of recordings.
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Context } from '@temporalio/activity';
import { readRecordingsIndex } from '../src/catalog/recordings-index';
import { unwrapKey } from '../src/crypto';
import type { Dependencies } from '../src/runtime/dependencies';
import { blobsPrefix, parseBlobKey } from '../src/storage';
import { compareKeys } from '../src/streams/sorted-cursor';
import type { OrphanCheckResult } from '../workflows/check-types';
import { locationByName } from './backup-context';
import { readableIndexOf } from './check-backup';

/** Orphan and missing names kept in the result; the counts cover every one. */
const NAMES_KEPT = 20;

/** An external merge sort with bounded memory (GNU sort spills to `dir`); byte order, as S3 and the drivers list. */
async function sortUnique(input: string, output: string, dir: string): Promise<void> {
  await promisify(execFile)('sort', ['-u', '-S', '64M', '-T', dir, '-o', output, input], { env: { ...process.env, LC_ALL: 'C' } });
}

export function createOrphanCheckActivities(deps: Dependencies) {
  return {
    /**
     * Read-only, so a retry simply starts again. Blobs a running backup is writing are not yet referenced by any
     * manifest and show up as orphans: they are reported, never deleted (prune removes real orphans).
     */
    async findOrphans(input: { deployment: string; location: string; backupIds: string[] }): Promise<OrphanCheckResult> {
      const ctx = Context.current();
      const location = locationByName(deps, input.location);
      const result: OrphanCheckResult = { location: location.name, blobsListed: 0, referenced: 0, orphanCount: 0, orphans: [], missingCount: 0, missing: [] };
      await mkdir(deps.config.backup.workDir, { recursive: true });
      const dir = await mkdtemp(join(deps.config.backup.workDir, 'vpb-check-'));
      try {
        // Names only: no key reaches the disk.
        const unsorted = join(dir, 'referenced');
        const out = createWriteStream(unsorted);
        let written = 0;
        for (const backupId of input.backupIds) {
          const readable = await readableIndexOf(deps, input.deployment, backupId);
          if (!readable) {
            out.destroy();
            return { ...result, skipped: `the recordings index of backup ${backupId} verifies at no location, so what is an orphan cannot be told` };
          }
          const dataKey = unwrapKey(readable.manifest.encryption.dataKey, deps.keyRing());
          for await (const entry of readRecordingsIndex(readable.location, readable.manifest.artifacts.recordingsIndex, dataKey)) {
            if (!out.write(`${entry.blob}\n`)) await once(out, 'drain');
            if (++written % 5000 === 0) ctx.heartbeat({ phase: 'references', written });
          }
        }
        out.end();
        await once(out, 'finish');
        const sorted = join(dir, 'referenced.sorted');
        ctx.heartbeat({ phase: 'sort', written });
        await sortUnique(unsorted, sorted, dir);

        const references = createInterface({ input: createReadStream(sorted), crlfDelay: Infinity })[Symbol.asyncIterator]();
        const nextReference = async () => {
          const next = await references.next();
          if (next.done) return undefined;
          result.referenced += 1;
          return next.value;
        };
        const missing = (name: string) => {
          result.missingCount += 1;
          if (result.missing.length < NAMES_KEPT) result.missing.push(name);
        };
        let reference = await nextReference();
        for await (const item of location.list(blobsPrefix(input.deployment))) {
          const name = parseBlobKey(input.deployment, item.key);
          if (name === undefined) continue;
          result.blobsListed += 1;
          if (result.blobsListed % 5000 === 0) ctx.heartbeat({ phase: 'merge', listed: result.blobsListed });
          while (reference !== undefined && compareKeys(reference, name) < 0) {
            missing(reference);
            reference = await nextReference();
          }
          if (reference === name) reference = await nextReference();
          else {
            result.orphanCount += 1;
            if (result.orphans.length < NAMES_KEPT) result.orphans.push(name);
          }
        }
        while (reference !== undefined) {
          missing(reference);
          reference = await nextReference();
        }
        return result;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
