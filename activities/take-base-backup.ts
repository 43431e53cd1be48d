// A physical base backup of the deployment's cluster, streamed through encryption to every location; its manifest last.
import { Context } from '@temporalio/activity';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Meter } from '../src/catalog/artifacts';
import { readBaseManifest, sealBaseManifest, type BaseManifest } from '../src/catalog/base-manifest';
import type { TargetName } from '../src/config/load';
import { createEncryptStream, generateDataKey } from '../src/crypto';
import { withClient } from '../src/postgres';
import { startBaseBackup } from '../src/postgres/base-backup';
import { ensureReplicationSlot } from '../src/postgres/wal-receiver';
import { formatLsn, parseLsn } from '../src/postgres/wal-position';
import type { Dependencies } from '../src/runtime/dependencies';
import { baseManifestKey, baseTarKey } from '../src/storage';
import { putToEach } from '../src/storage/fan-out-put';
import { pointInTimeOf } from './point-in-time-context';

export interface TakeBaseBackupInput {
  target: TargetName;
  /** Chosen by the caller (e.g. from workflow time), so a retry writes the same base again rather than another. */
  baseId: string;
}

export interface TakeBaseBackupResult {
  baseId: string;
  startLsn: string;
  stopLsn: string;
  stopTime: string;
  tarBytes: number;
  /** Locations holding the committed base. */
  locations: string[];
}

const HEARTBEAT_MS = 2000;

function summary(manifest: BaseManifest, locations: string[]): TakeBaseBackupResult {
  return { baseId: manifest.baseId, startLsn: manifest.startLsn, stopLsn: manifest.stopLsn, stopTime: manifest.stopTime, tarBytes: manifest.tar.plaintextBytes, locations };
}

export function createTakeBaseBackupActivities(deps: Dependencies) {
  return {
    /**
     * pg_basebackup -Ft -X none (the WAL comes from the stream, whose slot is made first so nothing the base needs
     * is recycled), encrypted once and written to every location, heartbeating bytes. The manifest is written last:
     * a base without one does not exist, so a retry after a crash at any line writes the tar again.
     */
    async takeBaseBackup(input: TakeBaseBackupInput): Promise<TakeBaseBackupResult> {
      const ctx = Context.current();
      const { deployment, pointInTime } = pointInTimeOf(deps, input.target);
      const locations = deps.locations();
      const keyRing = deps.keyRing();
      const name = deployment.name;
      const existing = await Promise.all(locations.map((l) => readBaseManifest(l, name, input.baseId, keyRing)));
      if (existing.every(Boolean)) return summary(existing[0]!, locations.map((l) => l.name));

      const password = deps.postgresPassword(input.target);
      await ensureReplicationSlot(deployment.postgres, password, pointInTime.slot);
      const server = await withClient(deployment.postgres, password, async (client) => {
        const { rows } = await client.query<{ now: Date; version: string; segment: string; lsn: string; timeline: number }>(
          "SELECT now(), current_setting('server_version') AS version, (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment, pg_current_wal_lsn()::text AS lsn, (SELECT timeline_id FROM pg_control_checkpoint()) AS timeline",
        );
        return rows[0]!;
      });
      const dataKey = generateDataKey();
      const run = startBaseBackup(deployment.postgres, password, ctx.cancellationSignal);
      const plain = new Meter();
      const stored = new Meter();
      let lastBeat = 0;
      plain.on('data', () => {
        if (Date.now() - lastBeat < HEARTBEAT_MS) return;
        lastBeat = Date.now();
        ctx.heartbeat({ phase: 'base', baseId: input.baseId, bytes: plain.bytes });
      });
      const body = new PassThrough();
      const tarKey = baseTarKey(name, input.baseId);
      const flowing = pipeline(run.tar, plain, createEncryptStream(dataKey), stored, body);
      const [flowed, put] = await Promise.allSettled([flowing, putToEach(locations, tarKey, body)]);
      await run.done;
      if (flowed.status === 'rejected') throw flowed.reason;
      if (put.status === 'rejected') throw put.reason;
      if (put.value.written.length === 0) throw new Error(`the base backup could be written to no location: ${put.value.failed.map((f) => `${f.location}: ${f.error.message}`).join('; ')}`);
      const stop = await withClient(deployment.postgres, password, async (client) => (await client.query<{ now: Date; lsn: string }>('SELECT now(), pg_current_wal_lsn()::text AS lsn')).rows[0]!);

      const manifest = sealBaseManifest(
        {
          format: 1,
          deployment: name,
          baseId: input.baseId,
          startLsn: formatLsn(parseLsn(server.lsn)),
          stopLsn: formatLsn(parseLsn(stop.lsn)),
          timeline: server.timeline,
          startTime: server.now.toISOString(),
          stopTime: stop.now.toISOString(),
          walSegmentBytes: Number(server.segment),
          serverVersion: server.version,
          tar: { key: tarKey, size: stored.bytes, sha256: stored.digest(), plaintextBytes: plain.bytes },
          dataKey: keyRing.wrap(dataKey),
        },
        keyRing,
      );
      const text = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
      const written = locations.filter((l) => put.value.written.includes(l.name));
      await Promise.all(written.map((l) => l.put(baseManifestKey(name, input.baseId), text)));
      return summary(manifest, written.map((l) => l.name));
    },
  };
}
