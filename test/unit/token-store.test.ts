// API tokens: minted and hashed, checked by id and digest, refused when expired, revoked or wrong; the tokens file re-read when it changes.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiTokenDigest, apiTokenId, mintApiToken } from '../../src/auth/api-token';
import { ApiTokenStore } from '../../src/auth/token-store';
import { appendToken, readTokensFile, revokeToken } from '../../src/auth/tokens-file';
import type { ApiTokenEntry } from '../../src/config/schema';

function entryFor(principal: string, extra: Partial<ApiTokenEntry> = {}) {
  const minted = mintApiToken();
  const entry: ApiTokenEntry = { id: minted.id, principal, roles: ['viewer', 'operator'], sha256: minted.sha256, createdAt: '2026-12-01T00:00:00.000Z', ...extra };
  return { token: minted.token, entry };
}

const secretOf = (token: string) => token.slice(token.lastIndexOf('_') + 1);

describe('API token store', () => {
  it('mints vpb_<id>_<secret> tokens and stores only the SHA-256 of the whole token', () => {
    const { id, token, sha256 } = mintApiToken();
    expect(token).toMatch(/^vpb_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(apiTokenId(token)).toBe(id);
    expect(sha256).toBe(apiTokenDigest(token));
    expect(sha256).not.toContain(secretOf(token));
    expect(mintApiToken().token).not.toBe(token);
  });

  it('accepts a configured token as its principal, and names the fault of every refusal without the secret', () => {
    const alice = entryFor('alice');
    const old = entryFor('old', { expiresAt: '2026-11-30T00:00:00.000Z' });
    const gone = entryFor('gone', { revoked: '2026-11-29T00:00:00.000Z' });
    const store = new ApiTokenStore({ tokens: [alice.entry, old.entry, gone.entry], now: () => new Date('2026-12-01T12:00:00Z') });
    expect(store.check(alice.token)).toEqual({ ok: true, principal: { id: 'alice', roles: ['viewer', 'operator'], via: 'token', credentialId: alice.entry.id } });

    const wrongSecret = `vpb_${alice.entry.id}_${mintApiToken().token.split('_').slice(2).join('_')}`;
    const refusals: [string, RegExp][] = [
      [old.token, new RegExp(`token ${old.entry.id} expired \\(at 2026-11-30T00:00:00.000Z\\)`)],
      [gone.token, new RegExp(`token ${gone.entry.id} is revoked \\(since 2026-11-29`)],
      [wrongSecret, new RegExp(`token ${alice.entry.id}: the secret does not match`)],
      [mintApiToken().token, /unknown token id [0-9a-f]{12}: no such token is configured/],
      ['vpb_short', /not of the form vpb_<id>_<secret>/],
    ];
    for (const [token, reason] of refusals) {
      const result = store.check(token);
      expect(result.ok, token).toBe(false);
      if (result.ok) continue;
      expect(result.reason).toMatch(reason);
      if (token.length > 20) expect(result.reason).not.toContain(secretOf(token));
    }
  });

  it('refuses a token from the moment it expires, by the injected clock', () => {
    const soon = entryFor('soon', { expiresAt: '2026-12-01T12:00:00.000Z' });
    let now = new Date('2026-12-01T11:59:59.999Z');
    const store = new ApiTokenStore({ tokens: [soon.entry], now: () => now });
    expect(store.check(soon.token).ok).toBe(true);
    now = new Date('2026-12-01T12:00:00.000Z');
    expect(store.check(soon.token)).toMatchObject({ ok: false, reason: expect.stringMatching(/expired/) });
  });

  it('re-reads the tokens file when it changes: created, revoked and edited in place take effect without a restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpb-tokens-'));
    const path = join(dir, 'tokens.json');
    const alice = entryFor('alice');
    appendToken(path, alice.entry);
    expect(readFileSync(path, 'utf8')).not.toContain(secretOf(alice.token));
    const errors: string[] = [];
    const store = new ApiTokenStore({ tokensFile: path, onReloadError: (e) => errors.push(e.message) });
    expect(store.check(alice.token).ok).toBe(true);

    const bob = entryFor('bob');
    appendToken(path, bob.entry);
    expect(store.check(bob.token)).toMatchObject({ ok: true, principal: { id: 'bob' } });

    revokeToken(path, alice.entry.id, new Date('2026-12-01T10:00:00Z'));
    expect(store.check(alice.token)).toMatchObject({ ok: false, reason: expect.stringMatching(/is revoked \(since 2026-12-01T10:00:00.000Z\)/) });
    expect(store.check(bob.token).ok).toBe(true);

    // An edit in place (same inode) by hand: bob's roles narrowed.
    const file = readTokensFile(path);
    writeFileSync(path, JSON.stringify({ tokens: file.tokens.map((t) => (t.id === bob.entry.id ? { ...t, roles: ['viewer'] } : t)) }));
    expect(store.check(bob.token)).toMatchObject({ ok: true, principal: { roles: ['viewer'] } });

    // A broken file refuses its tokens (never the last good copy, which may hold a revoked one) until it is fixed.
    writeFileSync(path, '{ "tokens": [');
    expect(store.check(bob.token)).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot be checked: the tokens file is unreadable or invalid/) });
    expect(errors.join()).toMatch(/is not JSON/);
    writeFileSync(path, JSON.stringify(file));
    expect(store.check(bob.token).ok).toBe(true);
  });

  it('refuses at start a tokens file that is missing or writable by others, naming the fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpb-tokens-'));
    const path = join(dir, 'tokens.json');
    expect(() => new ApiTokenStore({ tokensFile: path })).toThrow(/tokensFile .*tokens\.json cannot be read \(ENOENT\): create it with `vaultpam-backup tokens create/);
    appendToken(path, entryFor('alice').entry);
    expect(readFileSync(path).length).toBeGreaterThan(0);
    chmodSync(path, 0o666);
    expect(() => new ApiTokenStore({ tokensFile: path })).toThrow(/is writable by others \(mode 666\): chmod 600/);
  });
});
