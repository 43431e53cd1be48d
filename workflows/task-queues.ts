// Task queues of the project's workflows and activities: the shards of a recordings copy have one of their own, so a
// worker takes only as many as `worker.shardsAtOnce` and leaves the rest to other workers.

/** The queue the shards of a copy started from a workflow on `taskQueue` are scheduled on. */
export function shardTaskQueue(taskQueue: string): string {
  return `${taskQueue}-shards`;
}
