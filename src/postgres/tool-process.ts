// Running pg_dump / pg_restore as child processes: libpq arguments, password by environment, stderr tail, cancellation.
import { spawn, type ChildProcess } from 'node:child_process';
import type { PostgresConfig } from '../config/schema';
import { PgToolAbortedError, scrubSecret } from './postgres-errors';

/** How much of a tool's stderr an error message quotes: the end is where the reason is. */
export const STDERR_TAIL_CHARS = 4000;

/** How long a tool gets to exit after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 5000;

/** Quotes a value for a libpq conninfo string: single quotes, backslash escapes. */
function quoteConninfoValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The `-d` argument for a database name. libpq reads a `-d` value containing "=" or starting with a URI
 * prefix as a whole connection string; a name like that is wrapped as `dbname='...'` so it stays a name.
 */
export function dbnameArgument(database: string): string {
  return /=|^postgres(ql)?:\/\//.test(database) ? `dbname=${quoteConninfoValue(database)}` : database;
}

/** Connection arguments shared by pg_dump and pg_restore. `--no-password`: never wait on a prompt. */
export function libpqArguments(config: PostgresConfig, database: string): string[] {
  return ['--no-password', '-h', config.host, '-p', String(config.port), '-U', config.user, '-d', dbnameArgument(database)];
}

/** The child's environment: the password travels in PGPASSWORD, never on the command line (visible in `ps`). */
export function toolEnvironment(password: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_MESSAGES: 'C', PGCONNECT_TIMEOUT: process.env.PGCONNECT_TIMEOUT ?? '10' };
  if (password !== undefined) env.PGPASSWORD = password;
  return env;
}

export interface ToolExit {
  /** Exit status, or null when the process died of a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of stderr with the password scrubbed. */
  stderrTail: string;
  /** True when the caller's AbortSignal caused the kill. */
  aborted: boolean;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  spawnError?: Error;
}

export interface ToolRun {
  child: ChildProcess;
  /** Settles once the process has exited and its stdio closed; never rejects. */
  exit: Promise<ToolExit>;
}

export interface SpawnToolOptions {
  /** Human name for messages, e.g. "pg_dump". */
  tool: string;
  bin: string;
  args: string[];
  password: string | undefined;
  signal?: AbortSignal;
  /** Whether the child reads stdin from us. */
  stdin: 'pipe' | 'ignore';
  /** Whether its stdout is consumed by us or discarded. */
  stdout: 'pipe' | 'ignore';
}

/** Spawns a PostgreSQL client tool, collecting a scrubbed stderr tail and killing it when `signal` aborts. */
export function spawnPgTool(options: SpawnToolOptions): ToolRun {
  if (options.signal?.aborted) throw new PgToolAbortedError(options.tool);
  const child = spawn(options.bin, options.args, {
    env: toolEnvironment(options.password),
    stdio: [options.stdin, options.stdout, 'pipe'],
  });

  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    // Scrub before trimming so a password split across two chunks is still caught whole.
    stderr = scrubSecret(stderr + chunk, options.password);
    if (stderr.length > STDERR_TAIL_CHARS * 2) stderr = stderr.slice(-STDERR_TAIL_CHARS);
  });

  let aborted = false;
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    aborted = true;
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    killTimer.unref();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const exit = new Promise<ToolExit>((resolve) => {
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
      // 'close' does not always follow a failed spawn.
      if (child.pid === undefined) finish(null, null);
    });
    let finished = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (finished) return;
      finished = true;
      options.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      const tail = scrubSecret(stderr, options.password).trim().slice(-STDERR_TAIL_CHARS);
      resolve({ code, signal, stderrTail: tail, aborted, ...(spawnError ? { spawnError } : {}) });
    };
    child.once('close', (code, signal) => finish(code, signal));
  });
  return { child, exit };
}

/** One line for an error message: why the tool stopped. */
export function describeExit(tool: string, exit: ToolExit): string {
  if (exit.spawnError) return `${tool} could not be started: ${exit.spawnError.message}`;
  if (exit.signal) return `${tool} was killed by ${exit.signal}`;
  return `${tool} exited with code ${exit.code}`;
}

/** What a long PostgreSQL step reports, including while nothing visible moves (an index build, a count). */
export interface ToolProgress {
  /** e.g. "pg_restore: loading data", "pg_restore: building indexes", "counting rows of public.audit_log". */
  phase: string;
  /** Bytes fed to or read from the tool so far (0 for a query). */
  bytes: number;
  /** Seconds since the step started. */
  elapsedSeconds: number;
  /** Seconds since the byte count last moved or the phase last changed. */
  silentSeconds: number;
}

/**
 * How often a step reports while it is silent. Far below any sensible heartbeat timeout; the activity SDK
 * throttles the heartbeats it sends to a fraction of the timeout, so a frequent report costs nothing.
 */
export const PROGRESS_INTERVAL_MS = 1000;

export interface ProgressReporter {
  /** The byte count moved: reported at once (callers drive heartbeats from it; the SDK throttles). */
  bytes(total: number): void;
  /** A new phase, reported at once. */
  phase(name: string): void;
  /** Stops the timer; call when the step has ended, whichever way. */
  stop(): void;
}

/**
 * Reports `onProgress` on every change and on a timer until stopped, so a child process that works without a
 * sound (pg_restore building indexes after its input ended) still heartbeats. Without `onProgress` it does nothing.
 */
export function startProgress(onProgress: ((progress: ToolProgress) => void) | undefined, phase: string, intervalMs = PROGRESS_INTERVAL_MS): ProgressReporter {
  if (!onProgress) return { bytes: () => undefined, phase: () => undefined, stop: () => undefined };
  const started = performance.now();
  let lastChange = started;
  let current = phase;
  let total = 0;
  const seconds = (ms: number) => Math.round(ms / 100) / 10;
  const report = (): void => {
    const now = performance.now();
    onProgress({ phase: current, bytes: total, elapsedSeconds: seconds(now - started), silentSeconds: seconds(now - lastChange) });
  };
  // No report at the start: the first one carries the first bytes (a heartbeat sent at once, the next ones throttled).
  const timer = setInterval(report, intervalMs);
  timer.unref();
  return {
    bytes(value) {
      total = value;
      lastChange = performance.now();
      report();
    },
    phase(name) {
      if (name === current) return;
      current = name;
      lastChange = performance.now();
      report();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
