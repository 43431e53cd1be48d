// An isolated sandbox deployment on the real stack: created, seeded, stopped and started by its own service commands, destroyed.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as Minio from 'minio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localStackDir, localStackPorts } from '../../src/config/local-stack';
import { deploymentSchema, type PostgresConfig } from '../../src/config/schema';
import { databaseExists, dropDatabase, renameDatabase } from '../../src/postgres';
import { runCommand } from '../../src/vaultpam/command-service-control';
import { statsSchema } from '../../sandbox/admin-api-schemas';
import { createSandboxInstance, instanceDatabase, type SandboxInstance } from '../../sandbox/instance';
import { loadSandboxConfig, sandboxConfigFileSchema } from '../../sandbox/sandbox-config';
import { seed } from '../../sandbox/seed';
import { stackEnv } from '../support/stack-env';

const env = stackEnv();
const name = `it-${randomBytes(4).toString('hex')}`;
const database = instanceDatabase(name);
const moved = `${database}_moved`;
const cluster: PostgresConfig = { host: env.pg.host, port: env.pg.port, database, user: env.pg.user };
const s3 = new Minio.Client({ ...env.s3, pathStyle: true });
let instance: SandboxInstance;
let token: string;

function portOpen(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      answer(true);
    });
    socket.once('error', () => answer(false));
  });
}

async function health(url: string): Promise<unknown> {
  const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
  return response.json();
}

async function stats() {
  const response = await fetch(`${instance.url}/admin/stats`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
  expect(response.status).toBe(200);
  return statsSchema.parse(await response.json());
}

beforeAll(async () => {
  instance = await createSandboxInstance({ name });
  token = readFileSync(instance.tokenFile, 'utf8').trim();
});

afterAll(async () => {
  await instance?.destroy();
  await dropDatabase(cluster, env.pg.password, moved, { ifExists: true, force: true });
});

describe('an isolated sandbox instance', () => {
  it('runs on a port of its own, with its own database, bucket and token, described as a deployment', async () => {
    expect(instance.configPath).toBe(join(localStackDir(), 'instances', name, 'config.json'));
    const file = sandboxConfigFileSchema.parse(JSON.parse(readFileSync(instance.configPath, 'utf8')));
    expect(file).toMatchObject({ name, port: instance.port, postgres: { database, port: localStackPorts().postgres }, s3: { bucket: `sbx-${name}` } });
    expect(Object.values(localStackPorts())).not.toContain(instance.port);

    expect(await health(instance.url)).toEqual({ status: 'ok', maintenance: false });
    expect(await databaseExists(cluster, env.pg.password, database)).toBe(true);
    expect(await s3.bucketExists(instance.bucket)).toBe(true);
    expect(await stats()).toEqual({ resources: 0, safes: 0, credentials: 0, connectors: 0, audit_log: 0, sessions: 0 });
    const unauthorised = await fetch(`${instance.url}/admin/stats`, { headers: { authorization: 'Bearer wrong' } });
    expect(unauthorised.status).toBe(401);

    const deployment = deploymentSchema.parse(instance.deployment);
    expect(deployment.controlPlane.url).toBe(instance.url);
    expect(deployment.postgres.database).toBe(database);
    expect(deployment.recordings.bucket).toBe(instance.bucket);
  });

  it('takes seeded data', async () => {
    const seeded = await seed(await loadSandboxConfig(instance.configPath), {
      organisations: 1,
      usersPerOrg: 2,
      resources: 3,
      safesPerResource: 1,
      credentialsPerSafe: 2,
      connectors: 1,
      auditEntries: 5,
      recordings: 2,
      recordingBytes: 512,
    });
    expect(seeded).toMatchObject({ resources: 3, safes: 3, credentials: 6, sessions: 2 });
    expect(await stats()).toEqual({ resources: 3, safes: 3, credentials: 6, connectors: 1, audit_log: 7, sessions: 2 });
  });

  it('stops through its stopCommand: the port closes and the database is free to be renamed', async () => {
    const started = performance.now();
    await runCommand(instance.deployment.controlPlane.stopCommand);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(await portOpen(instance.port)).toBe(false);
    expect(existsSync(join(localStackDir(), 'instances', name, 'server.pid'))).toBe(false);
    // The server closed its pool on the way out; a rename needs the database to itself.
    await renameDatabase(cluster, env.pg.password, database, moved, { attempts: 1 });
    await renameDatabase(cluster, env.pg.password, moved, database, { attempts: 1 });
    // Stopping what is stopped succeeds.
    await runCommand(instance.deployment.controlPlane.stopCommand);
  });

  it('starts through its startCommand with its data still there, and a second start is a no-op', async () => {
    await runCommand(instance.deployment.controlPlane.startCommand);
    expect(await health(instance.url)).toEqual({ status: 'ok', maintenance: false });
    expect(await stats()).toEqual({ resources: 3, safes: 3, credentials: 6, connectors: 1, audit_log: 7, sessions: 2 });
    const pidFile = join(localStackDir(), 'instances', name, 'server.pid');
    const pid = readFileSync(pidFile, 'utf8');
    await runCommand(instance.deployment.controlPlane.startCommand);
    expect(readFileSync(pidFile, 'utf8')).toBe(pid);
  });

  it('stops and starts programmatically too', async () => {
    expect(await instance.stop()).toMatchObject({ already: false });
    expect(await instance.stop()).toMatchObject({ already: true, pid: undefined });
    expect(await instance.start()).toMatchObject({ already: false });
    expect(await instance.start()).toMatchObject({ already: true });
  });

  it('explains what is wrong: an unknown configuration, a name in use, an invalid name', async () => {
    const [program, ...args] = instance.deployment.controlPlane.startCommand;
    const missing = [program ?? 'node', ...args.slice(0, -1), join(localStackDir(), 'instances', 'no-such-instance', 'config.json')];
    await expect(runCommand(missing)).rejects.toThrow(/cannot read the instance configuration .*no-such-instance/);
    await expect(createSandboxInstance({ name })).rejects.toThrow(/already exists.*destroy it first/);
    await expect(createSandboxInstance({ name: 'Not_Valid' })).rejects.toThrow(/instance name "Not_Valid" is invalid/);
  });

  it('leaves the shared production sandbox alone, and destroy removes everything it made', async () => {
    expect(await health(`http://127.0.0.1:${localStackPorts().sandbox}`)).toMatchObject({ status: 'ok' });
    await instance.destroy();
    expect(await portOpen(instance.port)).toBe(false);
    expect(await databaseExists(cluster, env.pg.password, database)).toBe(false);
    expect(await s3.bucketExists(instance.bucket)).toBe(false);
    expect(existsSync(join(localStackDir(), 'instances', name))).toBe(false);
    // Destroying twice is harmless (afterAll does it again).
  });
});
