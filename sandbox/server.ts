// The sandbox VaultPAM process: node --import tsx sandbox/server.ts --config .stack/sandbox/<name>.json
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { buildControlPlane } from './control-plane';
import { applySchema, createPool } from './database';
import { MaintenanceMode } from './maintenance-mode';
import { createRecordingsClient, ensureBucket } from './recordings';
import { loadSandboxConfig } from './sandbox-config';

/** A stop must finish well inside this: the orchestrator renames or drops the database right after. */
const STOP_DEADLINE_MS = 2_000;

/** How long a start keeps retrying a database that is not there yet (e.g. mid-swap during a restore). */
const START_RETRY_MS = 30_000;

// Synchronous writes: the process exits right after its last line, and an async buffer would lose it.
const logger: Logger = pino(
  {
    name: 'vaultpam-sandbox',
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'token', 'password', 'secretKey', '*.token', '*.password', '*.secretKey'],
      censor: '[redacted]',
    },
  },
  pino.destination({ dest: 1, sync: true }),
);

async function withRetry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + START_RETRY_MS;
  for (let tries = 1; ; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      logger.warn({ err: error, tries }, `${what} failed; retrying`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 200 * tries)));
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: true });
  if (!values.config) throw new Error('usage: node --import tsx sandbox/server.ts --config .stack/sandbox/<name>.json');
  const config = await loadSandboxConfig(values.config);
  const log = logger.child({ instance: config.name });

  const db = createPool(config);
  db.on('error', (error) => log.warn({ err: error }, 'idle database connection lost'));
  const recordings = createRecordingsClient(config);
  await withRetry('applying the schema', () => applySchema(db));
  await withRetry('creating the recordings bucket', () => ensureBucket(recordings, config.s3.bucket, config.s3.region));
  const maintenance = await MaintenanceMode.load(config.stateDir);
  const app = await buildControlPlane(config, { db, recordings, maintenance, logger: log });

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    const force = setTimeout(() => {
      log.error({ deadlineMs: STOP_DEADLINE_MS }, 'stop deadline passed; exiting with requests or connections still open');
      process.exit(1);
    }, STOP_DEADLINE_MS);
    force.unref();
    void (async () => {
      try {
        await app.close();
        await db.end();
        log.info('stopped');
        process.exit(0);
      } catch (error) {
        log.error({ err: error }, 'stop failed');
        process.exit(1);
      }
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const address = await app.listen({ host: config.host, port: config.port });
  log.info(
    { address, database: config.postgres.database, bucket: config.s3.bucket, maintenance: maintenance.state },
    'serving the admin API',
  );
}

main().catch((error: unknown) => {
  logger.fatal({ err: error }, 'sandbox failed to start');
  process.exit(1);
});
