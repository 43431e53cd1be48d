// A worker in a process of its own for the comparison benchmark, so its RSS is the worker's alone and two of them can share a backup.
//
//   node --import tsx scripts/bench-worker.ts <config.json> <task queue> <workflow bundle> <identity>
//
// The configuration file holds a ConfigInput whose secrets are file references, never values. "ready" goes to
// stdout once the worker is connected; SIGTERM shuts it down after its running activities finish.
import { readFile } from 'node:fs/promises';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { parseConfig } from '../src/config/load';
import { isEntryPoint } from '../src/runtime/entry-point';
import { createWorker } from '../src/temporal/worker';

async function main(argv: string[]): Promise<void> {
  const [configPath, taskQueue, bundlePath, identity] = argv;
  if (!configPath || !taskQueue || !bundlePath || !identity) throw new Error('usage: bench-worker.ts <config.json> <task queue> <workflow bundle> <identity>');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = parseConfig(JSON.parse(await readFile(configPath, 'utf8')));
  const { worker, connection } = await createWorker({ config, taskQueue, workflowBundlePath: bundlePath, options: { identity, shutdownGraceTime: '5 seconds' } });
  const stop = () => worker.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const running = worker.run();
  process.stdout.write('ready\n');
  try {
    await running;
  } finally {
    await connection.close();
  }
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`bench worker: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
