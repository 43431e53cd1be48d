// Validation of object keys and list prefixes, shared by every driver so they refuse the same keys.
import { InvalidKeyError } from './storage-errors';

/** Temporary files of the filesystem driver start with this; no key segment may, so list() can skip them. */
export const TEMP_FILE_MARKER = '.vpb-tmp-';

/** S3 caps an object name at 1024 bytes; the location prefix takes part of that. */
const MAX_KEY_BYTES = 900;

function checkSegments(key: string, segments: string[]): void {
  for (const segment of segments) {
    if (segment === '') throw new InvalidKeyError(key, 'it has an empty path segment ("//" or a trailing "/")');
    if (segment === '.' || segment === '..') throw new InvalidKeyError(key, `it has a "${segment}" segment`);
    if (segment.startsWith(TEMP_FILE_MARKER)) throw new InvalidKeyError(key, `segments starting with "${TEMP_FILE_MARKER}" are reserved`);
  }
}

function checkCharacters(key: string): void {
  if (key.startsWith('/')) throw new InvalidKeyError(key, 'it is absolute (starts with "/")');
  if (key.includes('\\')) throw new InvalidKeyError(key, 'it contains a backslash');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new InvalidKeyError(key, 'it contains a control character');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new InvalidKeyError(key, `it is longer than ${MAX_KEY_BYTES} bytes`);
}

/** A key names one object: non-empty segments separated by "/". */
export function assertValidKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError(String(key), 'it is empty');
  checkCharacters(key);
  checkSegments(key, key.split('/'));
}

/** A list prefix is "" (everything), a key-like path, or one ending in "/"; its last segment may be partial. */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return;
  checkCharacters(prefix);
  const segments = prefix.split('/');
  if (prefix.endsWith('/')) segments.pop();
  checkSegments(prefix, segments);
}

/** The location's own prefix from configuration, normalised to "" or "a/b/" (always ending in "/"). */
export function normaliseRootPrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  assertValidKey(trimmed);
  return `${trimmed}/`;
}
