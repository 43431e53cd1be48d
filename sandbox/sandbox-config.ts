// The sandbox instance's configuration file (written by scripts/stack.sh): its schema and its loader.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const absolutePath = z.string().regex(/^\//, 'give an absolute path');

/** The JSON file `scripts/stack.sh` writes to `.stack/sandbox/<name>.json`; secrets are named by file, never inlined. */
export const sandboxConfigFileSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'use lower-case letters, digits and dashes'),
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 lets the system choose a free port (tests). */
    port,
    postgres: z.object({
      host: z.string().min(1).default('127.0.0.1'),
      port: port.default(55432),
      database: z.string().min(1),
      user: z.string().min(1),
      passwordFile: absolutePath,
    }),
    s3: z.object({
      endPoint: z.string().min(1).default('127.0.0.1'),
      port: port.default(7070),
      useSSL: z.boolean().default(false),
      region: z.string().min(1).default('us-east-1'),
      accessKey: z.string().min(1),
      secretKeyFile: absolutePath,
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'use an S3 bucket name: 3-63 lower-case letters, digits, dots, dashes'),
    }),
    tokenFile: absolutePath,
    /** Holds what must survive a restore of the database: the maintenance flag. */
    stateDir: absolutePath,
  })
  .strict();
export type SandboxConfigFile = z.infer<typeof sandboxConfigFileSchema>;

/** The configuration with its secrets read; never logged. */
export interface SandboxConfig {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly postgres: Readonly<SandboxConfigFile['postgres']> & { readonly password: string };
  readonly s3: Readonly<SandboxConfigFile['s3']> & { readonly secretKey: string };
  readonly token: string;
  readonly stateDir: string;
}

export class SandboxConfigError extends Error {
  readonly code = 'SANDBOX_CONFIG_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'SandboxConfigError';
  }
}

async function readSecret(path: string, field: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SandboxConfigError(`${field}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); run scripts/stack.sh up to create the secrets`);
  }
  const value = text.trim();
  if (value === '') throw new SandboxConfigError(`${field}: ${path} is empty`);
  return value;
}

/** Validates a parsed configuration document and reads the secrets it names. */
export async function resolveSandboxConfig(document: unknown, source = 'configuration'): Promise<SandboxConfig> {
  const parsed = sandboxConfigFileSchema.safeParse(document);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new SandboxConfigError(`${source} is invalid: ${problems.join('; ')}`);
  }
  const file = parsed.data;
  const [password, secretKey, token] = await Promise.all([
    readSecret(file.postgres.passwordFile, 'postgres.passwordFile'),
    readSecret(file.s3.secretKeyFile, 's3.secretKeyFile'),
    readSecret(file.tokenFile, 'tokenFile'),
  ]);
  return Object.freeze({
    name: file.name,
    host: file.host,
    port: file.port,
    postgres: Object.freeze({ ...file.postgres, password }),
    s3: Object.freeze({ ...file.s3, secretKey }),
    token,
    stateDir: file.stateDir,
  });
}

/** Reads `.stack/sandbox/<name>.json` (or any file of that shape) and the secrets it names. */
export async function loadSandboxConfig(path: string): Promise<SandboxConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SandboxConfigError(`cannot read configuration ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); scripts/stack.sh sandbox start <name> writes it`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new SandboxConfigError(`configuration ${path} is not JSON: ${(error as Error).message}`);
  }
  return resolveSandboxConfig(document, `configuration ${path}`);
}
