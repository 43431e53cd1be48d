// Follows a running workflow for a waiting command: reads its progress each second and feeds the display until stopped.
import type { Client } from '@temporalio/client';
import type { ProgressStream } from './progress-display';

export interface FollowOptions {
  /** Leads every line, e.g. "backup 20261127T020000Z-1a2b3c". */
  label: string;
  /** --json: the output is the result alone, so nothing is followed. */
  json?: boolean;
  /** @default process.stderr */
  stream?: ProgressStream;
  /** @default 1000 */
  pollMs?: number;
  /**
   * Off a terminal, the least time between two plain lines.
   * @default 5000
   */
  plainIntervalMs?: number;
}

export interface Following {
  /** Stops polling and ends the display (the bar cleared, the last plain figures printed). */
  stop(): Promise<void>;
}

const NOTHING: Following = { stop: async () => {} };

export async function followProgress(client: Client, workflowId: string, options: FollowOptions): Promise<Following> {
  if (options.json) return NOTHING;
  const [{ createProgressDisplay }, { readWorkflowProgress }] = await Promise.all([import('./progress-display'), import('../operations/workflow-progress')]);
  const display = createProgressDisplay({ label: options.label, stream: options.stream ?? process.stderr, ...(options.plainIntervalMs !== undefined ? { plainIntervalMs: options.plainIntervalMs } : {}) });
  const pollMs = options.pollMs ?? 1000;
  let running = true;
  let wake: () => void = () => {};
  const loop = (async () => {
    while (running) {
      try {
        const progress = await readWorkflowProgress(client, workflowId);
        if (!running) break;
        if (progress.workflowStatus !== 'RUNNING') break;
        display.update(progress);
      } catch {
        // a describe that fails once (a busy server) is tried again on the next tick
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, pollMs).unref();
      });
    }
  })();
  return {
    async stop() {
      running = false;
      wake();
      await loop;
      display.stop();
    },
  };
}
