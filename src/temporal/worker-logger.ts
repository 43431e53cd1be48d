// The worker's log: the SDK's own, less its warning that the shard queue's poller has no workflows (by design: that
// queue carries the shards of a recordings copy only), which would otherwise greet every operator at start.
import { DefaultLogger, type LogLevel, type LogMetadata } from '@temporalio/worker';

const NO_WORKFLOWS = 'No workflows registered, not polling for workflow tasks';

export class WorkerLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (message === NO_WORKFLOWS && String(meta?.['taskQueue'] ?? '').endsWith('-shards')) return;
    super.log(level, message, meta);
  }
}
