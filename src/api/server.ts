// Starts the HTTP API with a Temporal client and the configured authentication; only development mode may go without credentials, and only on loopback.
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';
import { createAuthenticator } from '../auth/authenticate';
import { connectClient } from '../temporal/connect';
import { authConfigOf, buildApi } from './app';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function startApi(config: Config): Promise<{ url: string; close(): Promise<void> }> {
  const auth = authConfigOf(config);
  // Whoever reaches this API can restore over production: without credentials it may listen on loopback only.
  if (auth.mode === 'development' && !LOOPBACK.test(config.api.host)) {
    throw new VaultpamBackupError(
      'VPB_ERR_CONFIG_INVALID',
      `api.host is ${config.api.host} but api.auth.mode is "development" (no credentials): listen on 127.0.0.1, or set api.auth.mode "tokens" with api.auth.tokensFile or api.auth.jwt`,
    );
  }
  // Built before connecting: a missing tokens file or JWT key stops the API here, with the file named.
  const reloadLog: { write: (message: string) => void } = { write: (message) => void process.stderr.write(`${message}\n`) };
  const authenticator = createAuthenticator(auth, { onReloadError: (err) => reloadLog.write(`the API tokens file cannot be re-read, its tokens are refused until it is fixed: ${err.message}`) });
  const client = await connectClient(config);
  const app = buildApi({ config, client, authenticator, logger: true });
  reloadLog.write = (message) => app.log.error(message);
  if (auth.mode === 'development') {
    const warning = `api.auth.mode is "development": every caller of ${config.api.host}:${config.api.port} is "developer" with every role, without a credential. Never use this beyond a developer's machine.`;
    app.log.warn(warning);
    process.stderr.write(`\n  WARNING: ${warning}\n\n`);
  }
  const url = await app.listen({ host: config.api.host, port: config.api.port });
  return {
    url,
    async close() {
      await app.close();
      await client.connection.close();
    },
  };
}
