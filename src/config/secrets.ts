// Resolves the secrets the configuration names; only the worker, the API and the CLI process call this, never a workflow.
import { readFileSync } from 'node:fs';
import { VaultpamBackupError } from '../errors/catalogue';
import type { SecretRef } from './schema';

/** Describes where a secret comes from, without its value: safe for logs and errors. */
export function describeSecretRef(ref: SecretRef): string {
  return 'env' in ref ? `env:${ref.env}` : `file:${ref.file}`;
}

export function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '') {
      throw new VaultpamBackupError('VPB_ERR_SECRET_MISSING', describeSecretRef(ref), `set the environment variable ${ref.env}`);
    }
    return value;
  }
  let text: string;
  try {
    text = readFileSync(ref.file, 'utf8');
  } catch (err) {
    throw new VaultpamBackupError('VPB_ERR_SECRET_MISSING', describeSecretRef(ref), `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new VaultpamBackupError('VPB_ERR_SECRET_MISSING', describeSecretRef(ref), 'the file is empty');
  return value;
}

/** Every secret value the configuration resolves to, for scrubbing logs and error messages. */
export function collectSecretRefs(node: unknown, out: SecretRef[] = []): SecretRef[] {
  if (Array.isArray(node)) node.forEach((n) => collectSecretRefs(n, out));
  else if (node && typeof node === 'object') {
    const keys = Object.keys(node);
    if (keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file')) out.push(node as SecretRef);
    else Object.values(node).forEach((n) => collectSecretRefs(n, out));
  }
  return out;
}
