// Isolated sandbox VaultPAM deployments (own database, bucket, token, port, process) that restore tests may stop, start and swap.
//
//   node --import tsx sandbox/instance.ts stop|start|destroy <configPath>
//
// The shared `production` and `staging` sandboxes serve every other test; a restore test that stops a control
// plane or swaps its database under it would break them. An instance lives under
// `<stack dir>/instances/<name>/`: config.json (the shape scripts/stack.sh writes), token, state/, server.pid
// and server.log. Its deployment's stop/start commands are this file's CLI, so the restore workflow drives it
// exactly as it drives a real deployment's service commands.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect, createServer, type AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { localStackDir, localStackPorts, repoRoot } from '../src/config/local-stack';
import type { deploymentSchema, PostgresConfig } from '../src/config/schema';
import { createDatabase, dropDatabase } from '../src/postgres';
import { createRecordingsClient, emptyBucket, ensureBucket } from './recordings';
import { loadSandboxConfig, sandboxConfigFileSchema, type SandboxConfigFile } from './sandbox-config';
import { isEntryPoint } from '../src/runtime/entry-point';

/** A stop sends SIGTERM, and SIGKILL when the server has not exited by 80 % of this. */
const STOP_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 30_000;
const POLL_MS = 100;

// Absolute, so the commands work from any working directory (the worker runs them from its own).
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const SERVER_SCRIPT = join(repoRoot, 'sandbox', 'server.ts');
const INSTANCE_SCRIPT = join(repoRoot, 'sandbox', 'instance.ts');

const NAME = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

/** What `deploymentSchema` accepts (before defaults). */
export type DeploymentInput = z.input<typeof deploymentSchema>;

export class SandboxInstanceError extends Error {
  readonly code = 'SANDBOX_INSTANCE_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'SandboxInstanceError';
  }
}

/** Database `sbx_<name>` (dashes become underscores, which names may not hold, so no two names collide). */
export function instanceDatabase(name: string): string {
  return `sbx_${name.replaceAll('-', '_')}`;
}

export function instanceBucket(name: string): string {
  return `sbx-${name}`;
}

export function instanceDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(localStackDir(env), 'instances', name);
}

function instanceFiles(configPath: string) {
  const dir = dirname(configPath);
  return { dir, pidFile: join(dir, 'server.pid'), logFile: join(dir, 'server.log') };
}

// ---------------------------------------------------------------------------------------------- processes and ports

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function readInstanceConfig(configPath: string): Promise<SandboxConfigFile> {
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    throw new SandboxInstanceError(
      `cannot read the instance configuration ${configPath} (${(error as NodeJS.ErrnoException).code ?? 'error'}); createSandboxInstance() writes it`,
    );
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new SandboxInstanceError(`the instance configuration ${configPath} is not JSON: ${(error as Error).message}`);
  }
  const parsed = sandboxConfigFileSchema.safeParse(document);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new SandboxInstanceError(`the instance configuration ${configPath} is invalid: ${problems.join('; ')}`);
  }
  if (parsed.data.port === 0) throw new SandboxInstanceError(`the instance configuration ${configPath} has port 0; an instance needs a fixed port`);
  return parsed.data;
}

/** 127.0.0.1 for a wildcard bind: a client cannot connect to 0.0.0.0 everywhere. */
function dialHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((answer) => {
    const socket = connect({ host: dialHost(host), port });
    const finish = (open: boolean) => {
      socket.destroy();
      answer(open);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

async function healthy(host: string, port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://${dialHost(host)}:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
    if (!response.ok) return false;
    const body = (await response.json()) as { status?: unknown };
    return body.status === 'ok';
  } catch {
    return false;
  }
}

/** Sends a signal to a process that may have exited a moment ago (ESRCH is not an error then). */
function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/**
 * True when `pid` is this instance's server. The pid file may be stale and the number reused by another
 * program: on Linux the command line must name this configuration, so nothing else is ever signalled. A
 * zombie has an empty command line and counts as gone.
 */
function isInstanceServer(pid: number, configPath: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes(configPath) && argv.includes(SERVER_SCRIPT);
  } catch {
    return false;
  }
}

async function runningServer(pidFile: string, configPath: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isInstanceServer(pid, configPath) ? pid : undefined;
}

async function logTail(logFile: string, lines = 15): Promise<string> {
  try {
    const text = await readFile(logFile, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function freePort(host: string): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

// ---------------------------------------------------------------------------------------------- stop / start

export interface ServiceResult {
  name: string;
  port: number;
  /** The server's process id (start) or the one that was stopped; undefined when there was none. */
  pid: number | undefined;
  /** Nothing had to be done: it was already running (start) or already stopped (stop). */
  already: boolean;
}

/**
 * Stops the instance's server: SIGTERM through its pid file, then waits until the process is gone and its port
 * closed; SIGKILL when SIGTERM was not enough by 80 % of the timeout. Succeeds at once when it is not running.
 */
export async function stopInstance(configPath: string, options: { timeoutMs?: number } = {}): Promise<ServiceResult> {
  const path = resolve(configPath);
  const config = await readInstanceConfig(path);
  const { pidFile, logFile } = instanceFiles(path);
  const timeoutMs = options.timeoutMs ?? STOP_TIMEOUT_MS;
  const started = Date.now();
  const pid = await runningServer(pidFile, path);

  if (pid !== undefined) {
    signalProcess(pid, 'SIGTERM');
    let killed = false;
    for (;;) {
      const alive = isInstanceServer(pid, path);
      if (!alive && !(await portOpen(config.host, config.port))) break;
      const elapsed = Date.now() - started;
      if (alive && !killed && elapsed > timeoutMs * 0.8) {
        // The server gives itself 2 s to close; past that it is stuck, and the caller is about to swap its database.
        signalProcess(pid, 'SIGKILL');
        killed = true;
      }
      if (elapsed > timeoutMs) {
        throw new SandboxInstanceError(
          `sandbox instance "${config.name}" (pid ${pid}) did not stop within ${timeoutMs} ms: ` +
            `${alive ? 'the process is still running' : `port ${config.port} is still open`}; see ${logFile}:\n${await logTail(logFile)}`,
        );
      }
      await sleep(POLL_MS);
    }
  }
  await rm(pidFile, { force: true });
  if (pid === undefined && (await portOpen(config.host, config.port))) {
    throw new SandboxInstanceError(
      `sandbox instance "${config.name}" is not running (no live server in ${pidFile}), yet port ${config.port} is open: ` +
        'another program holds it; nothing was stopped. Stop that program, or destroy and recreate the instance to get another port',
    );
  }
  return { name: config.name, port: config.port, pid, already: pid === undefined };
}

/**
 * Starts the instance's server detached (it outlives the caller, as a service would), records its pid and
 * waits until /healthz answers ok. Succeeds at once when it already runs.
 */
export async function startInstance(configPath: string, options: { timeoutMs?: number } = {}): Promise<ServiceResult> {
  const path = resolve(configPath);
  const config = await readInstanceConfig(path);
  // Reads the secrets it names: a missing one is reported here, not as a server that dies in its log.
  await loadSandboxConfig(path);
  const { pidFile, logFile } = instanceFiles(path);
  const timeoutMs = options.timeoutMs ?? START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;

  const running = await runningServer(pidFile, path);
  if (running !== undefined) {
    while (!(await healthy(config.host, config.port))) {
      if (Date.now() > deadline) {
        throw new SandboxInstanceError(
          `sandbox instance "${config.name}" runs (pid ${running}) but /healthz on port ${config.port} did not answer ok within ${timeoutMs} ms; ` +
            `see ${logFile}:\n${await logTail(logFile)}`,
        );
      }
      await sleep(POLL_MS);
    }
    return { name: config.name, port: config.port, pid: running, already: true };
  }
  if (await portOpen(config.host, config.port)) {
    throw new SandboxInstanceError(
      `cannot start sandbox instance "${config.name}": port ${config.port} is in use by another program; stop it, or destroy and recreate the instance to get another port`,
    );
  }

  const log = openSync(logFile, 'a');
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(process.execPath, ['--import', TSX_LOADER, SERVER_SCRIPT, '--config', path], {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', log, log],
    });
  } finally {
    // The child holds its own copy; ours would only keep the file open.
    closeSync(log);
  }
  let exit: string | undefined;
  child.once('exit', (code, signal) => {
    exit = signal ? `signal ${signal}` : `exit code ${code}`;
  });
  child.once('error', (error) => {
    exit = error.message;
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) {
    await sleep(0);
    throw new SandboxInstanceError(`cannot start sandbox instance "${config.name}": ${exit ?? `${process.execPath} could not be spawned`}`);
  }
  await writeFile(pidFile, `${pid}\n`);

  while (!(await healthy(config.host, config.port))) {
    if (exit !== undefined) {
      await rm(pidFile, { force: true });
      throw new SandboxInstanceError(`sandbox instance "${config.name}" exited while starting (${exit}); see ${logFile}:\n${await logTail(logFile)}`);
    }
    if (Date.now() > deadline) {
      signalProcess(pid, 'SIGKILL');
      await rm(pidFile, { force: true });
      throw new SandboxInstanceError(
        `sandbox instance "${config.name}" did not answer /healthz on port ${config.port} within ${timeoutMs} ms and was killed; see ${logFile}:\n${await logTail(logFile)}`,
      );
    }
    await sleep(POLL_MS);
  }
  return { name: config.name, port: config.port, pid, already: false };
}

/**
 * Stops the server, drops its database (disconnecting anyone left), removes its bucket with every object and its
 * directory. An instance whose configuration is already gone was destroyed before: nothing to do.
 */
export async function destroyInstance(configPath: string): Promise<void> {
  const path = resolve(configPath);
  if (!existsSync(path)) return;
  await stopInstance(path);
  const config = await loadSandboxConfig(path);
  const postgres: PostgresConfig = { host: config.postgres.host, port: config.postgres.port, database: config.postgres.database, user: config.postgres.user };
  await dropDatabase(postgres, config.postgres.password, config.postgres.database, { ifExists: true, force: true });
  const s3 = createRecordingsClient(config);
  if (await s3.bucketExists(config.s3.bucket)) {
    await emptyBucket(s3, config.s3.bucket);
    await s3.removeBucket(config.s3.bucket);
  }
  await rm(dirname(path), { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------- programmatic instance

export interface SandboxInstance {
  readonly name: string;
  readonly port: number;
  /** The admin API's base URL. */
  readonly url: string;
  readonly configPath: string;
  readonly database: string;
  readonly bucket: string;
  readonly tokenFile: string;
  /** For `deploymentSchema`: this instance as the deployment a backup or restore targets. */
  readonly deployment: DeploymentInput;
  stop(): Promise<ServiceResult>;
  start(): Promise<ServiceResult>;
  /** Stops it and removes its database, bucket and directory. Databases a test renamed away are the test's to drop. */
  destroy(): Promise<void>;
}

export interface CreateSandboxInstanceOptions {
  /** 1-40 lower-case letters, digits and dashes; the instance's directory, database and bucket are named after it. */
  name: string;
  /** @default a free port the system picks */
  port?: number;
  /**
   * Which of the local stack's PostgreSQL clusters holds its database: `production`'s streams WAL (point-in-time
   * protection), `staging`'s does not. @default staging
   */
  cluster?: 'staging' | 'production';
}

/**
 * Creates and starts an instance: database `sbx_<name>`, bucket `sbx-<name>`, a token of its own, a free port.
 * Refuses a name already in use; on any later failure it removes what it made.
 */
export async function createSandboxInstance(options: CreateSandboxInstanceOptions): Promise<SandboxInstance> {
  const { name } = options;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new SandboxInstanceError(`instance name ${JSON.stringify(name)} is invalid: use 1-40 lower-case letters, digits and dashes, starting and ending with a letter or digit`);
  }
  const stackDir = localStackDir();
  const ports = localStackPorts();
  const secrets = join(stackDir, 'secrets');
  const dir = instanceDir(name);
  const configPath = join(dir, 'config.json');
  const tokenFile = join(dir, 'token');
  const database = instanceDatabase(name);
  const bucket = instanceBucket(name);
  if (existsSync(dir)) {
    throw new SandboxInstanceError(
      `sandbox instance "${name}" already exists (${dir}); destroy it first: node --import tsx sandbox/instance.ts destroy ${configPath}`,
    );
  }

  await mkdir(join(dir, 'state'), { recursive: true, mode: 0o700 });
  const host = '127.0.0.1';
  const document: SandboxConfigFile = sandboxConfigFileSchema.parse({
    name,
    host,
    port: options.port ?? (await freePort(host)),
    postgres: { host: '127.0.0.1', port: options.cluster === 'production' ? ports.postgresProduction : ports.postgres, database, user: 'vaultpam', passwordFile: join(secrets, 'pg-password') },
    s3: { endPoint: '127.0.0.1', port: ports.s3, accessKey: 'vaultpam', secretKeyFile: join(secrets, 's3-secret-key'), bucket },
    tokenFile,
    stateDir: join(dir, 'state'),
  });
  await writeFile(tokenFile, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
  await writeFile(configPath, `${JSON.stringify(document, null, 2)}\n`);

  let config;
  try {
    config = await loadSandboxConfig(configPath);
    const postgres: PostgresConfig = { host: config.postgres.host, port: config.postgres.port, database, user: config.postgres.user };
    // Without ifNotExists: a leftover database of that name is someone's data, never ours to reuse or drop.
    await createDatabase(postgres, config.postgres.password, database);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  try {
    await ensureBucket(createRecordingsClient(config), bucket, config.s3.region);
    await startInstance(configPath);
  } catch (error) {
    await destroyInstance(configPath).catch(() => undefined);
    throw error;
  }

  const url = `http://${host}:${document.port}`;
  const command = (verb: 'stop' | 'start') => [process.execPath, '--import', TSX_LOADER, INSTANCE_SCRIPT, verb, configPath];
  return {
    name,
    port: document.port,
    url,
    configPath,
    database,
    bucket,
    tokenFile,
    deployment: {
      name: `sbx-${name}`,
      postgres: { host: document.postgres.host, port: document.postgres.port, database, user: document.postgres.user, password: { file: document.postgres.passwordFile } },
      recordings: {
        endPoint: document.s3.endPoint,
        port: document.s3.port,
        useSSL: document.s3.useSSL,
        region: document.s3.region,
        accessKey: document.s3.accessKey,
        secretKey: { file: document.s3.secretKeyFile },
        bucket,
      },
      controlPlane: { url, token: { file: tokenFile }, stopCommand: command('stop'), startCommand: command('start') },
    },
    stop: () => stopInstance(configPath),
    start: () => startInstance(configPath),
    destroy: () => destroyInstance(configPath),
  };
}

// ---------------------------------------------------------------------------------------------- CLI

const USAGE = 'usage: node --import tsx sandbox/instance.ts stop|start|destroy <configPath>';

async function cli(argv: readonly string[]): Promise<void> {
  const [verb, configPath, ...rest] = argv;
  if (configPath === undefined || rest.length > 0 || (verb !== 'stop' && verb !== 'start' && verb !== 'destroy')) {
    console.error(USAGE);
    process.exitCode = 2;
    return;
  }
  if (verb === 'destroy') {
    await destroyInstance(configPath);
    console.log(`destroyed sandbox instance ${resolve(configPath)}`);
    return;
  }
  const result = verb === 'stop' ? await stopInstance(configPath) : await startInstance(configPath);
  const state = verb === 'stop' ? (result.already ? 'was not running' : `stopped (pid ${result.pid})`) : result.already ? `already running (pid ${result.pid})` : `started (pid ${result.pid})`;
  console.log(`sandbox instance ${result.name} on port ${result.port}: ${state}`);
}

if (isEntryPoint(import.meta.url)) {
  cli(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`sandbox instance: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
