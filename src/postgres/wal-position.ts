// WAL positions (LSNs) and segment file names: parsing, formatting and the arithmetic between them.

/** The default and usual size of a WAL segment; a cluster's own size is read with `SHOW wal_segment_size`. */
export const DEFAULT_WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

/** `16/B374D848` (PostgreSQL's pg_lsn text) as a number. */
export function parseLsn(text: string): bigint {
  const match = LSN_TEXT.exec(text.trim());
  if (!match) throw new TypeError(`not a WAL position (expected e.g. "16/B374D848"): ${JSON.stringify(text)}`);
  return (BigInt(`0x${match[1]!}`) << 32n) | BigInt(`0x${match[2]!}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

function segmentsPerLog(segmentBytes: number): bigint {
  return 0x100000000n / BigInt(segmentBytes);
}

export interface WalSegment {
  timeline: number;
  /** The segment's number counted from LSN 0: consecutive segments differ by one. */
  number: bigint;
}

export function parseSegmentName(name: string, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): WalSegment {
  const match = SEGMENT_NAME.exec(name);
  if (!match) throw new TypeError(`not a WAL segment name (24 upper-case hex digits): ${JSON.stringify(name)}`);
  return { timeline: Number.parseInt(match[1]!, 16), number: BigInt(`0x${match[2]!}`) * segmentsPerLog(segmentBytes) + BigInt(`0x${match[3]!}`) };
}

export function segmentName(segment: WalSegment, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): string {
  const perLog = segmentsPerLog(segmentBytes);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(segment.timeline)}${hex(segment.number / perLog)}${hex(segment.number % perLog)}`;
}

/** The segment holding the byte at `lsn`. */
export function segmentOf(lsn: bigint, timeline: number, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): WalSegment {
  return { timeline, number: lsn / BigInt(segmentBytes) };
}

/** The LSN of a segment's first byte. */
export function segmentStartLsn(segment: WalSegment, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): bigint {
  return segment.number * BigInt(segmentBytes);
}

/** The segment a position ends in: a record ending exactly on a boundary lies in the segment before it. */
export function segmentEndingAt(lsn: bigint, timeline: number, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): WalSegment {
  return segmentOf(lsn > 0n ? lsn - 1n : 0n, timeline, segmentBytes);
}
