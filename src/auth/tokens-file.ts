// The tokens file: hashed API tokens as JSON, read and validated, and rewritten whole (write, then rename) with mode 0600.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatIssues } from '../config/load';
import { apiTokensFileSchema, type ApiTokenEntry, type ApiTokensFile } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';

/** Reads and validates the tokens file; `missingIsEmpty` lets the first `tokens create` start one. */
export function readTokensFile(path: string, options: { missingIsEmpty?: boolean } = {}): ApiTokensFile {
  if (options.missingIsEmpty && !existsSync(path)) return { tokens: [] };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const fix = code === 'ENOENT' ? 'create it with `vaultpam-backup tokens create --principal <name> --roles <roles>`' : 'check its path and permissions';
    throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `api.auth.tokensFile ${path} cannot be read (${code}): ${fix}`);
  }
  // Group- or world-writable, anyone on the machine could add themselves a token.
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o022) {
    throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `api.auth.tokensFile ${path} is writable by others (mode ${mode.toString(8)}): chmod 600 ${path}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `api.auth.tokensFile ${path} is not JSON (${(err as Error).message}): fix it, or write it with \`vaultpam-backup tokens\``);
  }
  const parsed = apiTokensFileSchema.safeParse(json);
  if (!parsed.success) throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `api.auth.tokensFile ${path}: ${formatIssues(parsed.error)}`);
  const ids = new Set<string>();
  for (const t of parsed.data.tokens) {
    if (ids.has(t.id)) throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `api.auth.tokensFile ${path}: token id "${t.id}" is used twice; remove one`);
    ids.add(t.id);
  }
  return parsed.data;
}

/** Replaces the file whole: a reader (the API) sees the old content or the new, never half of it. */
export function writeTokensFile(path: string, file: ApiTokensFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(apiTokensFileSchema.parse(file), null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

export function appendToken(path: string, entry: ApiTokenEntry): void {
  const file = readTokensFile(path, { missingIsEmpty: true });
  if (file.tokens.some((t) => t.id === entry.id)) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `token id ${entry.id} is already in ${path}; create the token again`);
  writeTokensFile(path, { tokens: [...file.tokens, entry] });
}

/** Marks a token revoked (kept in the file, so the audit trail's credential ids still resolve to a principal). */
export function revokeToken(path: string, id: string, now: Date): ApiTokenEntry {
  const file = readTokensFile(path);
  const entry = file.tokens.find((t) => t.id === id);
  if (!entry) throw new VaultpamBackupError('VPB_ERR_NOT_FOUND', `token ${id}`, `it is not in ${path}; \`vaultpam-backup tokens list\` shows the ids`);
  if (entry.revoked) return entry;
  const revoked = { ...entry, revoked: now.toISOString() };
  writeTokensFile(path, { tokens: file.tokens.map((t) => (t.id === id ? revoked : t)) });
  return revoked;
}
