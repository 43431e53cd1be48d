// `vaultpam-backup tokens create|list|revoke`: one API token per person, printed once, kept only as a SHA-256 digest.
import { Command, InvalidArgumentError } from 'commander';
import { ROLES, type Role } from '../auth/principal';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';

function parseRoles(value: string): Role[] {
  const names = value.split(',').map((r) => r.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(ROLES as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length) throw new InvalidArgumentError(`${unknown.length ? `unknown role ${unknown.join(', ')}: ` : ''}give a comma-separated list of ${ROLES.join(', ')}`);
  return [...new Set(names)] as Role[];
}

/** The tokens file to act on: --file, else api.auth.tokensFile. */
function tokensFileOf(config: () => Config, file: string | undefined): string {
  if (file) return file;
  const configured = config().api.auth?.tokensFile;
  if (!configured) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', 'no tokens file: give --file <path>, or set api.auth.tokensFile in the configuration');
  return configured;
}

function stateOf(entry: { revoked?: boolean | string | undefined; expiresAt?: string | undefined }, now: Date): string {
  if (entry.revoked) return typeof entry.revoked === 'string' ? `revoked ${entry.revoked}` : 'revoked';
  if (entry.expiresAt && Date.parse(entry.expiresAt) <= now.getTime()) return `expired ${entry.expiresAt}`;
  return entry.expiresAt ? `active until ${entry.expiresAt}` : 'active';
}

export function tokensCommand(config: () => Config): Command {
  const tokens = new Command('tokens').description("the API's callers: one token per person, stored hashed in api.auth.tokensFile");

  tokens
    .command('create')
    .description('create a token for one person or system; it is printed once and stored only as its SHA-256')
    .requiredOption('--principal <name>', 'who the token speaks for, e.g. "alice" or "ci-nightly" (recorded as requestedBy and in approvals)')
    .requiredOption('--roles <roles>', `comma-separated: ${ROLES.join(', ')}`, parseRoles)
    .option('--expires <duration|time>', 'valid for this long ("90d", "12h") or until this ISO 8601 time; default: until revoked')
    .option('--file <tokensFile>', 'the tokens file (default: api.auth.tokensFile)')
    .option('--json', 'print the token and its entry as JSON')
    .action(async (opts: { principal: string; roles: Role[]; expires?: string; file?: string; json?: boolean }) => {
      const { parseDuration } = await import('../config/activity-timeouts');
      const { apiTokenEntrySchema } = await import('../config/schema');
      const { formatIssues } = await import('../config/load');
      const { mintApiToken } = await import('../auth/api-token');
      const { appendToken } = await import('../auth/tokens-file');
      const path = tokensFileOf(config, opts.file);
      const now = new Date();
      let expiresAt: string | undefined;
      if (opts.expires !== undefined) {
        const ms = parseDuration(opts.expires);
        const at = ms !== undefined ? now.getTime() + ms : Date.parse(opts.expires);
        if (!Number.isFinite(at) || at <= now.getTime()) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `--expires ${opts.expires} is neither a duration ("90d", "12h") nor a future ISO 8601 time`);
        expiresAt = new Date(at).toISOString();
      }
      const minted = mintApiToken();
      const parsed = apiTokenEntrySchema.safeParse({ id: minted.id, principal: opts.principal, roles: opts.roles, sha256: minted.sha256, createdAt: now.toISOString(), ...(expiresAt ? { expiresAt } : {}) });
      if (!parsed.success) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', formatIssues(parsed.error).replace(/^principal:/, '--principal:'));
      appendToken(path, parsed.data);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ token: minted.token, ...parsed.data, tokensFile: path }, null, 2)}\n`);
      } else {
        // The token alone on stdout (`tokens create ... > alice.token`); what to do with it on stderr.
        process.stdout.write(`${minted.token}\n`);
        process.stderr.write(
          `token ${minted.id} for ${opts.principal} (${opts.roles.join(', ')})${expiresAt ? `, expires ${expiresAt}` : ''}, added to ${path}.\n` +
            `It will not be shown again: hand it to ${opts.principal} now (it goes in VAULTPAM_API_TOKEN or a --token-file). Only its SHA-256 is kept.\n`,
        );
      }
    });

  tokens
    .command('list')
    .description('the tokens in the file and the configuration: id, principal, roles, state (never a secret)')
    .option('--file <tokensFile>', 'the tokens file (default: api.auth.tokensFile)')
    .option('--json', 'print as JSON')
    .action(async (opts: { file?: string; json?: boolean }) => {
      const { readTokensFile } = await import('../auth/tokens-file');
      const cfg = config();
      const path = opts.file ?? cfg.api.auth?.tokensFile;
      const fromFile = path ? readTokensFile(path).tokens.map((t) => ({ ...t, source: path })) : [];
      const inline = (opts.file ? [] : (cfg.api.auth?.tokens ?? [])).map((t) => ({ ...t, source: 'api.auth.tokens' }));
      const rows = [...inline, ...fromFile].map(({ sha256: _digest, ...t }) => t);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) {
        process.stdout.write(`no tokens${path ? ` in ${path}` : ''}; create one with \`vaultpam-backup tokens create --principal <name> --roles <roles>\`\n`);
        return;
      }
      const now = new Date();
      const width = Math.max(...rows.map((r) => r.principal.length));
      for (const r of rows) process.stdout.write(`${r.id}  ${r.principal.padEnd(width)}  ${r.roles.join(',').padEnd(36)}  ${stateOf(r, now)}${r.source === 'api.auth.tokens' ? '  (configuration)' : ''}\n`);
    });

  tokens
    .command('revoke')
    .description('revoke a token at once: the API re-reads the file when it changes, no restart needed')
    .argument('<id>', 'the token id (`tokens list`; the part between "vpb_" and the second "_")')
    .option('--file <tokensFile>', 'the tokens file (default: api.auth.tokensFile)')
    .action(async (id: string, opts: { file?: string }) => {
      const { revokeToken } = await import('../auth/tokens-file');
      const path = tokensFileOf(config, opts.file);
      if (!opts.file && config().api.auth?.tokens?.some((t) => t.id === id)) {
        throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `token ${id} is written in the configuration (api.auth.tokens): remove it there, or add "revoked": true to it, and restart the API`);
      }
      const entry = revokeToken(path, id, new Date());
      process.stdout.write(`token ${id} of ${entry.principal} revoked (${typeof entry.revoked === 'string' ? entry.revoked : 'revoked'}); the API refuses it from its next request\n`);
    });

  return tokens;
}
