// Starts the HTTP API on the configured loopback address, with a Temporal client and the resolved token.
import type { Config } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import { VaultpamBackupError } from '../errors/catalogue';
import { connectClient } from '../temporal/connect';
import { buildApi } from './app';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function startApi(config: Config): Promise<{ url: string; close(): Promise<void> }> {
  // Whoever reaches this API can restore over production: without a token it may listen on loopback only.
  if (!config.api.token && !LOOPBACK.test(config.api.host)) {
    throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `api.host is ${config.api.host} but api.token is not set: set api.token, or listen on 127.0.0.1`);
  }
  const token = config.api.token ? resolveSecret(config.api.token) : undefined;
  const client = await connectClient(config);
  const app = buildApi({ config, client, token, logger: true });
  const url = await app.listen({ host: config.api.host, port: config.api.port });
  return {
    url,
    async close() {
      await app.close();
      await client.connection.close();
    },
  };
}
