// Tests of the key layout inside a backup location.
import { describe, expect, it } from 'vitest';
import { backupKey, backupsPrefix, blobKey, blobsPrefix, manifestKey, parseBlobKey, parseManifestKey } from '../../src/storage';

describe('storage layout', () => {
  const sha = 'a'.repeat(64);

  it('spells out the documented layout', () => {
    expect(manifestKey('prod', '20250101T000000Z-ab12')).toBe('prod/backups/20250101T000000Z-ab12/manifest.json');
    expect(backupKey('prod', 'b1', 'db.dump.enc')).toBe('prod/backups/b1/db.dump.enc');
    expect(blobKey('prod', sha)).toBe(`prod/blobs/${sha}`);
    expect(blobKey('prod', `aa/${sha}`)).toBe(`prod/blobs/aa/${sha}`);
    expect(backupsPrefix('prod')).toBe('prod/backups/');
    expect(blobsPrefix('prod')).toBe('prod/blobs/');
  });

  it('refuses names that would change the layout', () => {
    expect(() => backupKey('prod', 'b1/../../x', 'db')).toThrow(/backupId/);
    expect(() => manifestKey('', 'b1')).toThrow(/deployment/);
    expect(() => backupKey('prod', '..', 'db')).toThrow();
    expect(() => blobKey('prod', 'not-a-sha')).toThrow(/SHA-256/);
    expect(() => blobKey('prod', `ab/${sha}`)).toThrow(/first two/);
  });

  it('parses manifest keys found by listing, and nothing else', () => {
    expect(parseManifestKey('prod', manifestKey('prod', 'b1'))).toEqual({ backupId: 'b1' });
    expect(parseManifestKey('prod', backupKey('prod', 'b1', 'db.dump.enc'))).toBeUndefined();
    expect(parseManifestKey('prod', 'prod/backups/a/b/manifest.json')).toBeUndefined();
    expect(parseManifestKey('prod', manifestKey('staging', 'b1'))).toBeUndefined();
  });

  it('parses blob keys found by listing, sharded and flat, and nothing else', () => {
    expect(parseBlobKey('prod', blobKey('prod', `aa/${sha}`))).toBe(`aa/${sha}`);
    expect(parseBlobKey('prod', blobKey('prod', sha))).toBe(sha);
    expect(parseBlobKey('prod', `prod/blobs/aa/${sha}.tmp`)).toBeUndefined();
    expect(parseBlobKey('prod', `prod/blobs/bb/${sha}`)).toBeUndefined();
    expect(parseBlobKey('staging', blobKey('prod', sha))).toBeUndefined();
  });
});
