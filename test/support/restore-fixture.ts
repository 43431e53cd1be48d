// An isolated deployment for restore tests (its own control plane, database and bucket) and a fingerprint of its state.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load';
import type { Config, ConfigInput } from '../../src/config/schema';
import { tableChecksums, tableRowCounts } from '../../src/postgres';
import { createDependencies, type Dependencies, type DependencyOverrides } from '../../src/runtime/dependencies';
import { createSandboxInstance, type SandboxInstance } from '../../sandbox/instance';
import { loadSandboxConfig } from '../../sandbox/sandbox-config';
import { seed, type SeedOptions } from '../../sandbox/seed';
import { isolatedConfig } from './backup-fixture';

export const TABLES = ['organisations', 'users', 'resources', 'safes', 'credentials', 'connectors', 'audit_log', 'sessions'];

export interface RestoreFixture {
  instance: SandboxInstance;
  config: Config;
  deps: Dependencies;
  token: string;
  seed(options: SeedOptions): Promise<unknown>;
  /** Calls the instance's admin API. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  /** Everything a restore could change: per-table counts and checksums, the bucket with ETags, the connector export. */
  fingerprint(): Promise<{ counts: Record<string, number>; checksums: Record<string, string>; objects: string[]; connectors: unknown }>;
  destroy(): Promise<void>;
}

export interface RestoreFixtureOptions {
  smokeTestResourceId?: string;
  /** The cluster of the instance's database: production's streams WAL. @default staging */
  cluster?: 'staging' | 'production';
  /** Point-in-time protection of the instance (its cluster must be production's). */
  pointInTime?: ConfigInput['deployment']['pointInTime'];
}

export async function restoreFixture(options: RestoreFixtureOptions = {}): Promise<RestoreFixture> {
  const name = `rt-${randomBytes(3).toString('hex')}`;
  const instance = await createSandboxInstance({ name, ...(options.cluster ? { cluster: options.cluster } : {}) });
  const base = isolatedConfig();
  const overrides = options.smokeTestResourceId ? { smokeTestResourceId: options.smokeTestResourceId } : {};
  const config = parseConfig({
    ...base,
    deployment: { ...instance.deployment, controlPlane: { ...instance.deployment.controlPlane, ...overrides }, ...(options.pointInTime ? { pointInTime: options.pointInTime } : {}) },
    staging: undefined,
  });
  const deps = createDependencies(config);
  const token = readFileSync(instance.tokenFile, 'utf8').trim();
  const pgConfig = config.deployment.postgres;
  const password = deps.postgresPassword('production');
  return {
    instance,
    config,
    deps,
    token,
    async seed(options) {
      return seed(await loadSandboxConfig(instance.configPath), options);
    },
    async api(method, path, body) {
      const res = await fetch(`${instance.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
    },
    async fingerprint() {
      const client = deps.recordingsClient('production');
      const objects: string[] = [];
      for await (const o of client.listObjectsV2(config.deployment.recordings.bucket, '', true) as AsyncIterable<{ name: string; etag: string }>) {
        objects.push(`${o.name} ${o.etag}`);
      }
      objects.sort();
      const connectors = await deps.controlPlane('production').exportConnectors();
      delete (connectors as { exportedAt?: unknown }).exportedAt;
      return {
        counts: await tableRowCounts(pgConfig, password, pgConfig.database, TABLES),
        checksums: await tableChecksums(pgConfig, password, pgConfig.database, TABLES),
        objects,
        connectors,
      };
    },
    async destroy() {
      // Databases a restore set aside (kept until cleanup in production) go with the instance.
      const { withClient, dropDatabase } = await import('../../src/postgres');
      const leftovers = await withClient(pgConfig, password, async (c) => (await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${pgConfig.database}\\_%`])).rows.map((r) => r.datname), { database: 'postgres' });
      for (const name of leftovers) await dropDatabase(pgConfig, password, name, { ifExists: true, force: true });
      await instance.destroy();
    },
  };
}

/** The real ServiceControl, with every stop and start it is asked for written down. */
export function observedServiceControl(f: RestoreFixture): { calls: string[]; overrides: DependencyOverrides } {
  const real = createDependencies(f.config);
  const calls: string[] = [];
  return {
    calls,
    overrides: {
      serviceControl: (target) => ({
        async stop(signal) {
          calls.push(`stop ${target}`);
          await real.serviceControl(target).stop(signal);
        },
        async start(signal) {
          calls.push(`start ${target}`);
          await real.serviceControl(target).start(signal);
        },
      }),
    },
  };
}

/** Polls /healthz until stopped; every answer that was not "ok" is kept. */
export function watchHealth(f: RestoreFixture): { stop(): Promise<{ checks: number; problems: string[] }> } {
  const problems: string[] = [];
  let checks = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const health = await f.deps.controlPlane('production').health();
        if (health.status !== 'ok') problems.push(`status ${health.status}`);
      } catch (err) {
        problems.push((err as Error).message);
      }
      checks += 1;
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { checks, problems };
    },
  };
}
