// The command line as a client of the HTTP API: the caller's own token, Node's fetch, the API's errors passed on as they are.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';

export interface ApiTarget {
  url: string;
  /** The caller's token (or JWT); sent, never printed. */
  token: string;
}

/** An error the API answered with: its own code and message, which already say what is wrong and the fix. */
export class ApiAnswerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message.startsWith(code) ? message : `${code}: ${message}`);
    this.name = 'ApiAnswerError';
  }
}

/**
 * The API to send state-changing commands to (--api, else api.url), with the caller's token from VAULTPAM_API_TOKEN or
 * --token-file; undefined when neither is configured: the command then drives Temporal directly.
 */
export function apiTargetOf(config: Config, options: { api?: string; tokenFile?: string }, env: NodeJS.ProcessEnv = process.env): ApiTarget | undefined {
  const url = options.api ?? config.api.url;
  if (!url) return undefined;
  let token = env.VAULTPAM_API_TOKEN?.trim();
  if (options.tokenFile) {
    try {
      token = readFileSync(options.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `--token-file ${options.tokenFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): give the file your API token was saved in`);
    }
  }
  if (!token) {
    throw new VaultpamBackupError(
      'VPB_ERR_INPUT_INVALID',
      `the API at ${url} needs your own token: set VAULTPAM_API_TOKEN or give --token-file <path> (an admin creates one with \`vaultpam-backup tokens create --principal <you> --roles <roles>\`)`,
    );
  }
  return { url: url.replace(/\/+$/, ''), token };
}

/**
 * Calls the API; answers with the status and JSON body. An error status is thrown as ApiAnswerError unless it is one
 * the command reads as a result (`accept`, e.g. 422 for a failed verification).
 */
export async function callApi<T>(target: ApiTarget, method: 'GET' | 'POST', path: string, body?: unknown, accept: number[] = []): Promise<{ status: number; body: T }> {
  const payload = body !== undefined ? JSON.stringify(body) : method === 'POST' ? '{}' : undefined;
  let response: Response;
  try {
    response = await fetch(`${target.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(payload !== undefined ? { body: payload } : {}),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', `the API at ${target.url} cannot be reached (${cause?.code ?? cause?.message ?? (err as Error).message}): is \`vaultpam-backup api\` running there? (--api or api.url)`);
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (response.status >= 400 && !accept.includes(response.status)) {
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiAnswerError(response.status, error?.code ?? `HTTP ${response.status}`, error?.message ?? text.slice(0, 500));
  }
  return { status: response.status, body: json as T };
}
