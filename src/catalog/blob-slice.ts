// Which slice of a rotating read-data check a blob falls in: by the leading hex digits of its name's SHA-256, so the
// slices are stable from run to run and `of` consecutive runs read every blob exactly once.

/** A blob name's slice, 1..of. Both name formats (`xx/<sha256>` and a bare `<sha256>`) end with the 64 hex digits. */
export function blobSlice(blob: string, of: number): number {
  const leading = Number.parseInt(blob.slice(-64, -56), 16);
  return Math.floor((leading * of) / 0x1_0000_0000) + 1;
}
