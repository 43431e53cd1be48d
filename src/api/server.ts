// Starts the HTTP API on the configured loopback address, with a Temporal client and the resolved token.
import type { Config } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import { connectClient } from '../temporal/connect';
import { buildApi } from './app';

export async function startApi(config: Config): Promise<{ url: string; close(): Promise<void> }> {
  const client = await connectClient(config);
  const token = config.api.token ? resolveSecret(config.api.token) : undefined;
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
