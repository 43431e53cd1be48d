// The embedded default configuration: the local stack of scripts/stack.sh (sandbox VaultPAM, one S3 and one filesystem location).
import { join, resolve } from 'node:path';
import { repoRoot } from '../runtime/install-layout';
import type { ConfigInput, DeploymentConfig } from './schema';

export { repoRoot };

export interface LocalStackPorts {
  /** Staging's PostgreSQL cluster. */
  postgres: number;
  /** Production's PostgreSQL cluster: a cluster of its own, since base backups and WAL cover a whole cluster. */
  postgresProduction: number;
  temporal: number;
  temporalUi: number;
  s3: number;
  sandbox: number;
  staging: number;
  api: number;
}

export function localStackDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.VAULTPAM_STACK_DIR ?? join(repoRoot, '.stack'));
}

export function localStackPorts(env: NodeJS.ProcessEnv = process.env): LocalStackPorts {
  const port = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name}=${raw} is not a port number (1-65535)`);
    return n;
  };
  return {
    postgres: port('VAULTPAM_PG_PORT', 55432),
    postgresProduction: port('VAULTPAM_PG_PRODUCTION_PORT', 55433),
    temporal: port('VAULTPAM_TEMPORAL_PORT', 7233),
    temporalUi: port('VAULTPAM_TEMPORAL_UI_PORT', 8233),
    s3: port('VAULTPAM_S3_PORT', 7070),
    sandbox: port('VAULTPAM_SANDBOX_PORT', 8480),
    staging: port('VAULTPAM_STAGING_PORT', 8481),
    api: port('VAULTPAM_API_PORT', 8470),
  };
}

function sandboxDeployment(stackDir: string, ports: LocalStackPorts, which: 'production' | 'staging'): ConfigInput['deployment'] {
  const secrets = join(stackDir, 'secrets');
  const staging = which === 'staging';
  const stackScript = join(repoRoot, 'scripts', 'stack.sh');
  return {
    name: staging ? 'sandbox-staging' : 'sandbox',
    postgres: {
      host: '127.0.0.1',
      port: staging ? ports.postgres : ports.postgresProduction,
      database: staging ? 'vaultpam_staging' : 'vaultpam',
      user: 'vaultpam',
      password: { file: join(secrets, 'pg-password') },
    },
    recordings: {
      endPoint: '127.0.0.1',
      port: ports.s3,
      accessKey: 'vaultpam',
      secretKey: { file: join(secrets, 's3-secret-key') },
      bucket: staging ? 'recordings-staging' : 'recordings',
    },
    controlPlane: {
      url: `http://127.0.0.1:${staging ? ports.staging : ports.sandbox}`,
      token: { file: join(secrets, staging ? 'staging-control-plane-token' : 'control-plane-token') },
      stopCommand: ['bash', stackScript, 'sandbox', 'stop', which],
      startCommand: ['bash', stackScript, 'sandbox', 'start', which],
    },
  } satisfies ConfigInput['deployment'];
}

export function localStackConfig(env: NodeJS.ProcessEnv = process.env): ConfigInput {
  const stackDir = localStackDir(env);
  const ports = localStackPorts(env);
  const secrets = join(stackDir, 'secrets');
  return {
    deployment: sandboxDeployment(stackDir, ports, 'production'),
    staging: sandboxDeployment(stackDir, ports, 'staging'),
    temporal: {
      address: `127.0.0.1:${ports.temporal}`,
      namespace: 'default',
      taskQueue: 'vaultpam-backup',
      uiUrl: `http://127.0.0.1:${ports.temporalUi}`,
    },
    locations: [
      {
        name: 'primary',
        region: 'eu-central',
        kind: 's3',
        endPoint: '127.0.0.1',
        port: ports.s3,
        accessKey: 'vaultpam',
        secretKey: { file: join(secrets, 's3-secret-key') },
        bucket: 'vaultpam-backups-eu',
        prefix: 'vaultpam',
      },
      { name: 'secondary', region: 'us-east', kind: 'filesystem', path: join(stackDir, 'backups-us'), prefix: 'vaultpam' },
    ],
    encryption: { activeKeyId: 'local-1', keys: [{ id: 'local-1', secret: { file: join(secrets, 'master-key') } }] },
    backup: { concurrency: 8, workDir: join(stackDir, 'work') },
    // scripts/stack.sh writes the tokens file: local-operator's token in secrets/api-token, local-approver's in
    // secrets/api-token-approver.
    api: { host: '127.0.0.1', port: ports.api, auth: { mode: 'tokens', tokensFile: join(secrets, 'api-tokens.json') } },
    // One key pair for the whole stack: the API and the CLI sign with it, the worker verifies with its public half.
    approvals: {
      signingKey: { file: join(secrets, 'approvals-signing-key.pem') },
      signingKeyId: 'local-approvals',
      publicKeys: [{ id: 'local-approvals', file: join(secrets, 'approvals-public-key.pem') }],
    },
    restore: { approvals: { production: 1, staging: 0 }, breakGlass: { enabled: true } },
  };
}

export type { DeploymentConfig };
