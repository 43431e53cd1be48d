// A real worker in an OS process of its own, so a test can SIGKILL it mid-activity: node --import tsx test/support/worker-process.ts.
//
// As an entry point it reads a JSON description from $VAULTPAM_TEST_WORKER (or its first argument):
//   { "taskQueue": "...", "config": { ...configuration... }, "workflowBundlePath": "...", "identity"?: "..." }
// prints "worker ready" on stdout once the worker polls, and shuts down gracefully on SIGTERM or SIGINT.
// Imported, it only offers startWorkerProcess() to spawn one.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Runtime } from '@temporalio/worker';
import { WorkerLogger } from '../../src/temporal/worker-logger';
import { z } from 'zod';
import { formatIssues, parseConfig } from '../../src/config/load';
import { repoRoot } from '../../src/config/local-stack';
import type { Config } from '../../src/config/schema';
import { createWorker } from '../../src/temporal/worker';
import { isEntryPoint } from '../../src/runtime/entry-point';

export const WORKER_DESCRIPTION_ENV = 'VAULTPAM_TEST_WORKER';
export const WORKER_READY_LINE = 'worker ready';

/**
 * Timeouts for tests that SIGKILL a worker: a killed attempt is noticed after its heartbeat (or quick-call) timeout,
 * so the defaults (30 s, 60 s for undo steps, 3 minutes) would make each kill a wait of that long. Short enough for
 * seconds-long tests, long enough that a live worker on a loaded 2-core machine still reports in time.
 */
export const CRASH_TEST_TIMEOUTS = { heartbeat: '5s', undoHeartbeat: '8s', quickCall: '20s' } as const;
const entryPath = fileURLToPath(import.meta.url);

const descriptionSchema = z
  .object({
    taskQueue: z.string().min(1),
    /** Validated again by parseConfig: the parent passes the configuration it parsed; secrets stay references. */
    config: z.unknown(),
    workflowBundlePath: z.string().min(1),
    /** Shows in the history (ActivityTaskStarted.identity), so a test can tell which process ran an attempt. */
    identity: z.string().min(1).optional(),
  })
  .strict();

export interface WorkerDescription {
  taskQueue: string;
  config: Config;
  workflowBundlePath: string;
  identity?: string;
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code or signal once the process is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What the process wrote on stderr so far (for a failing test's message). */
  stderr(): string;
  /** SIGTERM (graceful shutdown), then SIGKILL if it is still there after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns the worker and resolves once it polls; rejects (and kills it) if it exits or stays silent for `timeoutMs`.
 * `env` adds to the test process's environment (e.g. a fault point for this worker only).
 */
export async function startWorkerProcess(description: WorkerDescription, timeoutMs = 60_000, env: Record<string, string> = {}): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entryPath], {
    cwd: repoRoot,
    env: { ...process.env, ...env, [WORKER_DESCRIPTION_ENV]: JSON.stringify(description) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const gone = () => child.exitCode !== null || child.signalCode !== null;

  const handle: WorkerProcess = {
    child,
    pid: child.pid!,
    exited,
    stderr: () => stderr,
    async stop(graceMs = 10_000) {
      if (gone()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`the worker process printed no "${WORKER_READY_LINE}" within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
    const onData = () => {
      if (stdout.includes(`${WORKER_READY_LINE}\n`)) done();
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(new Error(`the worker process exited (${signal ?? code}) before it was ready; stderr: ${stderr}`));
    function done() {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      resolve();
    }
    function fail(err: Error) {
      done();
      child.kill('SIGKILL');
      reject(err);
    }
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
  return handle;
}

function readDescription(): z.infer<typeof descriptionSchema> {
  const raw = process.env[WORKER_DESCRIPTION_ENV] ?? process.argv[2];
  if (!raw) throw new Error(`no worker description: set ${WORKER_DESCRIPTION_ENV} (or pass it as the first argument) to {"taskQueue", "config", "workflowBundlePath"}`);
  const parsed = descriptionSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) throw new Error(`invalid worker description: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

async function main(): Promise<void> {
  const description = readDescription();
  const config = parseConfig(description.config);
  // Warnings and errors only, on stderr: stdout carries the ready line the parent waits for.
  Runtime.install({
    logger: new WorkerLogger('WARN', (entry) => process.stderr.write(`[${entry.level}] ${entry.message}${entry.meta ? ` ${JSON.stringify(entry.meta)}` : ''}\n`)),
  });
  const { worker, connection } = await createWorker({
    config,
    taskQueue: description.taskQueue,
    workflowBundlePath: description.workflowBundlePath,
    options: { shutdownGraceTime: '2 seconds', ...(description.identity ? { identity: description.identity } : {}) },
  });
  try {
    // run() starts the pollers synchronously; the promise settles only at shutdown.
    const running = worker.run();
    process.stdout.write(`${WORKER_READY_LINE}\n`);
    await running;
  } finally {
    await connection.close();
  }
}

if (isEntryPoint(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`worker process failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
