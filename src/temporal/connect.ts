// Opens the Temporal client connection named by the configuration, with an error that says what to start.
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config/schema';
import { VaultpamBackupError } from '../errors/catalogue';

export async function connectClient(config: Pick<Config, 'temporal'>): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '5 seconds' });
  } catch (err) {
    throw new VaultpamBackupError('VPB_ERR_TEMPORAL_UNREACHABLE', config.temporal.address, (err as Error).message);
  }
  return new Client({ connection, namespace: config.temporal.namespace });
}
