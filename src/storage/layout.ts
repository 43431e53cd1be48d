// Where each artifact of a backup lives inside a location; the one place the key layout is spelled out.
import { assertValidKey } from './object-key';

const BACKUPS = 'backups';
const BLOBS = 'blobs';
const PINS = 'pins';
const RESTORES = 'restores';
const MANIFEST = 'manifest.json';
const CHECKS = 'checks';
const AUDIT = 'audit';
/** An audit entry's sequence number, zero-padded so listing order is sequence order. */
const AUDIT_ENTRY = /^(\d{12})\.json$/;
/** A blob name: `xx/<sha256>` in its shard folder (format 2), or a bare `<sha256>` (format 1, read only). */
const BLOB_NAME = /^(?:([0-9a-f]{2})\/)?([0-9a-f]{64})$/;

function segment(value: string, what: string): string {
  if (value.length === 0 || value.includes('/')) {
    throw new TypeError(`${what} must be a non-empty name without "/", got ${JSON.stringify(value)}`);
  }
  assertValidKey(value);
  return value;
}

/** `<deployment>/backups/`: every backup of a deployment, manifests included. */
export function backupsPrefix(deployment: string): string {
  return `${segment(deployment, 'deployment')}/${BACKUPS}/`;
}

/** `<deployment>/blobs/`: recording blobs, shared by the backups that reference them. */
export function blobsPrefix(deployment: string): string {
  return `${segment(deployment, 'deployment')}/${BLOBS}/`;
}

/** `<deployment>/backups/<backupId>/`: everything one backup wrote. */
export function backupPrefix(deployment: string, backupId: string): string {
  return `${backupsPrefix(deployment)}${segment(backupId, 'backupId')}/`;
}

/** `<deployment>/backups/<backupId>/<artifact>`, e.g. artifact "db.dump.enc". */
export function backupKey(deployment: string, backupId: string, artifact: string): string {
  return `${backupPrefix(deployment, backupId)}${segment(artifact, 'artifact')}`;
}

/** The commit point of a backup: written last, in every location. */
export function manifestKey(deployment: string, backupId: string): string {
  return backupKey(deployment, backupId, MANIFEST);
}

/**
 * `<deployment>/blobs/<name>`: a blob is written once and shared by every backup whose index names it. Names are
 * `xx/<sha256>` (sharded by the first two hex digits, so no folder of a filesystem location holds millions of
 * files) or, for repositories written before format 2, a bare `<sha256>`.
 */
export function blobKey(deployment: string, name: string): string {
  const match = BLOB_NAME.exec(name);
  if (!match || (match[1] !== undefined && match[1] !== match[2]!.slice(0, 2))) {
    throw new TypeError(`a blob name must be "xx/<64 lower-case hex digits>" (xx its first two) or 64 hex digits (a SHA-256), got ${JSON.stringify(name)}`);
  }
  return `${blobsPrefix(deployment)}${name}`;
}

/** Inverse of blobKey for keys found by listing blobsPrefix(); undefined for anything that is not a blob. */
export function parseBlobKey(deployment: string, key: string): string | undefined {
  const prefix = blobsPrefix(deployment);
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  const match = BLOB_NAME.exec(name);
  return match && (match[1] === undefined || match[1] === match[2]!.slice(0, 2)) ? name : undefined;
}

/** Inverse of manifestKey for keys found by listing backupsPrefix(); undefined for any other key. */
export function parseManifestKey(deployment: string, key: string): { backupId: string } | undefined {
  const prefix = backupsPrefix(deployment);
  if (!key.startsWith(prefix) || !key.endsWith(`/${MANIFEST}`)) return undefined;
  const backupId = key.slice(prefix.length, -(MANIFEST.length + 1));
  return backupId.length > 0 && !backupId.includes('/') ? { backupId } : undefined;
}

/** `<deployment>/pins/`: one small object per running use of a backup; retention skips what they name. */
export function pinsPrefix(deployment: string): string {
  return `${segment(deployment, 'deployment')}/${PINS}/`;
}

/** `<deployment>/pins/<backupId>/<holderWorkflowId>.json`: one pin per holder, so holders never overwrite each other. */
export function pinKey(deployment: string, backupId: string, holderWorkflowId: string): string {
  return `${pinsPrefix(deployment)}${segment(backupId, 'backupId')}/${segment(holderWorkflowId, 'holder workflow id')}.json`;
}

/** Inverse of pinKey for keys found by listing pinsPrefix(); undefined for any other key. */
export function parsePinKey(deployment: string, key: string): { backupId: string; holderWorkflowId: string } | undefined {
  const prefix = pinsPrefix(deployment);
  if (!key.startsWith(prefix) || !key.endsWith('.json')) return undefined;
  const parts = key.slice(prefix.length, -'.json'.length).split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { backupId: parts[0], holderWorkflowId: parts[1] };
}

/** `<deployment>/restores/`: the journals of every restore from this deployment's backups. */
export function restoresPrefix(deployment: string): string {
  return `${segment(deployment, 'deployment')}/${RESTORES}/`;
}

/** `<deployment>/restores/<restoreId>/<name>`: one entry of a restore's journal (its data key is "data-key.json"). */
export function restoreJournalKey(deployment: string, restoreId: string, name: string): string {
  return `${restoresPrefix(deployment)}${segment(restoreId, 'restoreId')}/${segment(name, 'journal entry')}`;
}

/** `<deployment>/checks/last.json`: the last repository check's summary, for whatever reports on it (metrics, preflight). */
export function lastCheckKey(deployment: string): string {
  return `${segment(deployment, 'deployment')}/${CHECKS}/last.json`;
}

/** `audit/<deployment>/`: the deployment's audit trail, one object per entry. */
export function auditPrefix(deployment: string): string {
  return `${AUDIT}/${segment(deployment, 'deployment')}/`;
}

/** `audit/<deployment>/<seq, 12 digits>.json`: one audit entry, written once. */
export function auditEntryKey(deployment: string, seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 1 || seq > 999_999_999_999) throw new TypeError(`an audit sequence number must be an integer from 1 to 999999999999, got ${seq}`);
  return `${auditPrefix(deployment)}${String(seq).padStart(12, '0')}.json`;
}

/** Inverse of auditEntryKey for keys found by listing auditPrefix(); undefined for any other key. */
export function parseAuditEntryKey(deployment: string, key: string): { seq: number } | undefined {
  const prefix = auditPrefix(deployment);
  if (!key.startsWith(prefix)) return undefined;
  const match = AUDIT_ENTRY.exec(key.slice(prefix.length));
  return match ? { seq: Number(match[1]) } : undefined;
}

const CHECKPOINTS = 'checkpoints';
const CONNECTOR_EXPORTS = 'connectors';
/** A checkpoint's or connector export's id: the UTC time it was started, to the millisecond, and 6 random hex digits. */
const POINT_ID = /^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}$/;

/** A time-sortable id (`20261202T041626123Z-1a2b3c`): listing order is start order. */
export function pointInTimeId(at: Date, random: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace('.', '');
  const id = `${stamp}-${random}`;
  if (!POINT_ID.test(id)) throw new TypeError(`a checkpoint id needs 6 lower-case hex digits after the time, got ${JSON.stringify(random)}`);
  return id;
}

/** `<deployment>/checkpoints/`: the recordings checkpoints of a deployment, each in a folder of its own. */
export function checkpointsPrefix(deployment: string): string {
  return `${segment(deployment, 'deployment')}/${CHECKPOINTS}/`;
}

/** `<deployment>/checkpoints/<checkpointId>/`: everything one recordings checkpoint wrote. */
export function checkpointPrefix(deployment: string, checkpointId: string): string {
  return `${checkpointsPrefix(deployment)}${segment(checkpointId, 'checkpointId')}/`;
}

/** `<deployment>/checkpoints/<checkpointId>/<artifact>` ("index.enc", "data-key.json", "manifest.json"). */
export function checkpointKey(deployment: string, checkpointId: string, artifact: string): string {
  return `${checkpointPrefix(deployment, checkpointId)}${segment(artifact, 'artifact')}`;
}

/** `<deployment>/connectors/`: the connector inventory's exports, one folder each, stored when it changed. */
export function connectorExportsPrefix(deployment: string): string {
  return `${segment(deployment, 'deployment')}/${CONNECTOR_EXPORTS}/`;
}

/** `<deployment>/connectors/<exportId>/`: everything one connector export wrote. */
export function connectorExportPrefix(deployment: string, exportId: string): string {
  return `${connectorExportsPrefix(deployment)}${segment(exportId, 'exportId')}/`;
}

/** `<deployment>/connectors/<exportId>/<artifact>` ("connectors.json.enc", "manifest.json"). */
export function connectorExportKey(deployment: string, exportId: string, artifact: string): string {
  return `${connectorExportPrefix(deployment, exportId)}${segment(artifact, 'artifact')}`;
}

/**
 * Inverse of checkpointKey / connectorExportKey for keys found by listing `prefix` (checkpointsPrefix or
 * connectorExportsPrefix): the id and the file; undefined for any other key.
 */
export function parsePointInTimeKey(prefix: string, key: string): { id: string; file: string } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const parts = key.slice(prefix.length).split('/');
  if (parts.length !== 2 || !POINT_ID.test(parts[0]!) || !parts[1]) return undefined;
  return { id: parts[0]!, file: parts[1] };
}

/** The commit point of a checkpoint or connector export, as for a backup. */
export const POINT_MANIFEST = MANIFEST;

/**
 * `<deployment>/sweep.json`: present while prune sweeps unreferenced blobs. A checkpoint, whose new blobs no manifest
 * names until it commits, does not start while it is there; prune does not sweep while a checkpoint is unfinished.
 */
export function sweepMarkerKey(deployment: string): string {
  return `${segment(deployment, 'deployment')}/sweep.json`;
}

// ---------------------------------------------------------------- point-in-time protection (WAL and base backups)

const WAL = 'wal';
const WAL_KEYS = 'keys';
const BASES = 'bases';
const WAL_MARK = 'mark.json';
const BASE_TAR = 'base.tar.enc';
/** A WAL segment's file name: timeline, log and segment, 8 hex digits each. */
const WAL_SEGMENT = /^[0-9A-F]{24}$/;
/** A partial segment names the end LSN it covers (16 hex digits), so a newer partial never overwrites an older one. */
const WAL_PARTIAL = /^([0-9A-F]{24})\.([0-9A-F]{16})\.partial$/;
const WAL_KEY_EPOCH = /^([0-9A-Za-z-]{1,64})\.json$/;

export type WalObject = { kind: 'segment'; segment: string } | { kind: 'partial'; segment: string; endLsn: bigint };

/** `<deployment>/wal/`: the deployment's streamed WAL, its key epochs and its high-water mark. */
export function walPrefix(deployment: string): string {
  return `${segment(deployment, 'deployment')}/${WAL}/`;
}

function walSegmentName(name: string): string {
  if (!WAL_SEGMENT.test(name)) throw new TypeError(`a WAL segment name must be 24 upper-case hex digits, got ${JSON.stringify(name)}`);
  return name;
}

/** `<deployment>/wal/<segment>`: a complete WAL segment, written once. */
export function walSegmentKey(deployment: string, name: string): string {
  return `${walPrefix(deployment)}${walSegmentName(name)}`;
}

/** `<deployment>/wal/<segment>.<end LSN, 16 hex>.partial`: the first bytes of a segment still being written, up to its end LSN. */
export function walPartialKey(deployment: string, name: string, endLsn: bigint): string {
  if (endLsn < 0n || endLsn >= 1n << 64n) throw new TypeError(`an LSN must fit 64 bits, got ${endLsn}`);
  return `${walPrefix(deployment)}${walSegmentName(name)}.${endLsn.toString(16).toUpperCase().padStart(16, '0')}.partial`;
}

/** Inverse of walSegmentKey and walPartialKey for keys found by listing walPrefix(); undefined for any other key. */
export function parseWalKey(deployment: string, key: string): WalObject | undefined {
  const prefix = walPrefix(deployment);
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  if (WAL_SEGMENT.test(name)) return { kind: 'segment', segment: name };
  const partial = WAL_PARTIAL.exec(name);
  return partial ? { kind: 'partial', segment: partial[1]!, endLsn: BigInt(`0x${partial[2]!}`) } : undefined;
}

/** `<deployment>/wal/keys/`: the wrapped data keys of the WAL stream, one per key epoch. */
export function walKeyEpochsPrefix(deployment: string): string {
  return `${walPrefix(deployment)}${WAL_KEYS}/`;
}

/** `<deployment>/wal/keys/<epoch>.json`: one epoch's data key, wrapped by a master key; rotation rewraps only this. */
export function walKeyEpochKey(deployment: string, epoch: string): string {
  if (!/^[0-9A-Za-z-]{1,64}$/.test(epoch)) throw new TypeError(`a WAL key epoch must be 1-64 letters, digits or "-", got ${JSON.stringify(epoch)}`);
  return `${walKeyEpochsPrefix(deployment)}${epoch}.json`;
}

/** Inverse of walKeyEpochKey for keys found by listing walKeyEpochsPrefix(). */
export function parseWalKeyEpochKey(deployment: string, key: string): { epoch: string } | undefined {
  const prefix = walKeyEpochsPrefix(deployment);
  if (!key.startsWith(prefix)) return undefined;
  const match = WAL_KEY_EPOCH.exec(key.slice(prefix.length));
  return match ? { epoch: match[1]! } : undefined;
}

/** `<deployment>/wal/mark.json`: the stream's high-water mark at this location (an LSN and the moment it covers). */
export function walMarkKey(deployment: string): string {
  return `${walPrefix(deployment)}${WAL_MARK}`;
}

/** `<deployment>/bases/`: physical base backups of the deployment's cluster. */
export function basesPrefix(deployment: string): string {
  return `${segment(deployment, 'deployment')}/${BASES}/`;
}

/** `<deployment>/bases/<baseId>/base.tar.enc`: the cluster's files as pg_basebackup's tar, encrypted. */
export function baseTarKey(deployment: string, baseId: string): string {
  return `${basesPrefix(deployment)}${segment(baseId, 'baseId')}/${BASE_TAR}`;
}

/** `<deployment>/bases/<baseId>/manifest.json`: written last; a base without one does not exist. */
export function baseManifestKey(deployment: string, baseId: string): string {
  return `${basesPrefix(deployment)}${segment(baseId, 'baseId')}/${MANIFEST}`;
}

/** Inverse of baseManifestKey for keys found by listing basesPrefix(); undefined for any other key. */
export function parseBaseManifestKey(deployment: string, key: string): { baseId: string } | undefined {
  const prefix = basesPrefix(deployment);
  if (!key.startsWith(prefix) || !key.endsWith(`/${MANIFEST}`)) return undefined;
  const baseId = key.slice(prefix.length, -(MANIFEST.length + 1));
  return baseId.length > 0 && !baseId.includes('/') ? { baseId } : undefined;
}
