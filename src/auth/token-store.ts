// Checks API tokens against their hashed entries (inline in the configuration and in the tokens file, re-read when it changes).
import { statSync } from 'node:fs';
import type { ApiTokenEntry } from '../config/schema';
import { apiTokenId, apiTokenMatches } from './api-token';
import type { Principal } from './principal';
import { readTokensFile } from './tokens-file';

export type CredentialCheck = { ok: true; principal: Principal } | { ok: false; reason: string };

export interface ApiTokenStoreOptions {
  /** Entries written in the configuration (api.auth.tokens). */
  tokens?: readonly ApiTokenEntry[];
  /** api.auth.tokensFile */
  tokensFile?: string;
  /** @default () => new Date() */
  now?: () => Date;
  /** Told when the tokens file cannot be re-read (the API logs it); its tokens are then refused until it is fixed. */
  onReloadError?: (error: Error) => void;
}

interface FileState {
  /** mtime, size and inode: any edit, in place or by rename, changes one of them. */
  stamp: string;
  entries: Map<string, ApiTokenEntry>;
  error?: Error;
}

export class ApiTokenStore {
  private readonly inline: Map<string, ApiTokenEntry>;
  private file: FileState | undefined;
  private readonly now: () => Date;

  constructor(private readonly options: ApiTokenStoreOptions) {
    this.inline = new Map((options.tokens ?? []).map((t) => [t.id, t]));
    this.now = options.now ?? (() => new Date());
    // Read once now: a missing or malformed file stops the API at start, with the file named, not at the first call.
    if (options.tokensFile) this.file = this.read(options.tokensFile, true);
  }

  /** Checks a bearer token of the vpb_ shape; the reason of a refusal names the token's id, never its secret. */
  check(bearer: string): CredentialCheck {
    const id = apiTokenId(bearer);
    if (!id) return { ok: false, reason: 'the token is not of the form vpb_<id>_<secret>: copy it whole, as `vaultpam-backup tokens create` printed it' };
    const fileEntries = this.fileEntries();
    const entry = this.inline.get(id) ?? fileEntries?.get(id);
    if (!entry) {
      if (fileEntries === undefined && this.options.tokensFile) return { ok: false, reason: `token ${id} cannot be checked: the tokens file is unreadable or invalid (the API log says why)` };
      return { ok: false, reason: `unknown token id ${id}: no such token is configured (create one with \`vaultpam-backup tokens create\`)` };
    }
    if (!apiTokenMatches(bearer, entry.sha256)) return { ok: false, reason: `token ${id}: the secret does not match; use the whole token as it was printed at creation` };
    if (entry.revoked) return { ok: false, reason: `token ${id} is revoked${typeof entry.revoked === 'string' ? ` (since ${entry.revoked})` : ''}: ask for a new one` };
    if (entry.expiresAt && Date.parse(entry.expiresAt) <= this.now().getTime()) return { ok: false, reason: `token ${id} expired (at ${entry.expiresAt}): ask for a new one` };
    return { ok: true, principal: { id: entry.principal, roles: [...entry.roles], via: 'token', credentialId: id } };
  }

  /** The file's entries, re-read when the file changed since the last look; undefined while it is unreadable. */
  private fileEntries(): Map<string, ApiTokenEntry> | undefined {
    const path = this.options.tokensFile;
    if (!path) return undefined;
    const stamp = stampOf(path);
    if (stamp !== this.file?.stamp) this.file = this.read(path, false, stamp);
    return this.file.error ? undefined : this.file.entries;
  }

  private read(path: string, throwing: boolean, stamp?: string): FileState {
    try {
      const before = stamp ?? stampOf(path);
      const { tokens } = readTokensFile(path);
      return { stamp: before, entries: new Map(tokens.map((t) => [t.id, t])) };
    } catch (err) {
      if (throwing) throw err;
      this.options.onReloadError?.(err as Error);
      return { stamp: stamp ?? 'error', entries: new Map(), error: err as Error };
    }
  }
}

function stampOf(path: string): string {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.mtimeNs}:${s.size}:${s.ino}`;
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code}`;
  }
}
