// Where tests find the local stack (scripts/stack.sh): addresses from the environment, secrets from .stack/secrets.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { localStackDir } from '../../src/config/local-stack';

export interface StackEnv {
  /** The stack's directory (VAULTPAM_STACK_DIR), holding secrets/, sandbox/, logs/. */
  stackDir: string;
  /** The PostgreSQL superuser of the local staging cluster (VAULTPAM_PG_PORT), where tests make their own databases. */
  pg: { host: string; port: number; user: string; password: string; passwordFile: string };
  /** The same superuser on production's cluster (VAULTPAM_PG_PRODUCTION_PORT), the one whose WAL is streamed. */
  pgProduction: { host: string; port: number; user: string; password: string; passwordFile: string };
  /** The S3 server's root credentials. */
  s3: { endPoint: string; port: number; useSSL: false; region: string; accessKey: string; secretKey: string; secretKeyFile: string };
  temporal: { address: string };
}

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`${name}=${raw} is not a TCP port`);
  return value;
}

function secret(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new Error(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}): start the stack first with bash scripts/stack.sh up`);
  }
}

let cached: StackEnv | undefined;

/** The same answer for the whole test process; throws a clear error when the stack was never provisioned. */
export function stackEnv(): StackEnv {
  if (cached) return cached;
  const stackDir = localStackDir();
  const passwordFile = join(stackDir, 'secrets', 'pg-password');
  const secretKeyFile = join(stackDir, 'secrets', 's3-secret-key');
  cached = {
    stackDir,
    pg: { host: '127.0.0.1', port: port('VAULTPAM_PG_PORT', 55432), user: 'vaultpam', password: secret(passwordFile), passwordFile },
    pgProduction: { host: '127.0.0.1', port: port('VAULTPAM_PG_PRODUCTION_PORT', 55433), user: 'vaultpam', password: secret(passwordFile), passwordFile },
    s3: {
      endPoint: '127.0.0.1',
      port: port('VAULTPAM_S3_PORT', 7070),
      useSSL: false,
      region: 'us-east-1',
      accessKey: 'vaultpam',
      secretKey: secret(secretKeyFile),
      secretKeyFile,
    },
    temporal: { address: `127.0.0.1:${port('VAULTPAM_TEMPORAL_PORT', 7233)}` },
  };
  return cached;
}
