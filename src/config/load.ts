// Loads the configuration once: a JSON file (--config or VAULTPAM_BACKUP_CONFIG) or the embedded local-stack default; validated, then frozen.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { VaultpamBackupError } from '../errors/catalogue';
import { localStackConfig } from './local-stack';
import { configSchema, type Config, type DeploymentConfig } from './schema';

export interface LoadOptions {
  /** Path of a JSON configuration file; default: $VAULTPAM_BACKUP_CONFIG, else the embedded local stack. */
  path?: string;
  env?: NodeJS.ProcessEnv;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    Object.values(value).forEach(deepFreeze);
  }
  return value;
}

/** Formats zod issues as one line per field: `locations.1.region: ...`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

export function parseConfig(input: unknown): Config {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', formatIssues(parsed.error));
  return deepFreeze(parsed.data);
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const path = options.path ?? env.VAULTPAM_BACKUP_CONFIG;
  if (!path) return parseConfig(localStackConfig(env));
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new VaultpamBackupError('VPB_ERR_CONFIG_UNREADABLE', path, (err as Error).message);
  }
  return parseConfig(raw);
}

export type TargetName = 'production' | 'staging';

/** The deployment a request targets; staging must be configured to be chosen. */
export function targetDeployment(config: Config, target: TargetName): DeploymentConfig {
  if (target === 'production') return config.deployment;
  if (!config.staging) throw new VaultpamBackupError('VPB_ERR_INPUT_INVALID', 'target "staging" is not configured: add a "staging" deployment to the configuration');
  return config.staging;
}
