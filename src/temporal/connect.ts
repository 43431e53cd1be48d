// Opens the Temporal client connection named by the configuration (TLS, mutual TLS, API key), with an error that says what to fix.
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config/schema';
import { describeTemporalConnection, temporalConnectionOptions, usesTls } from './connection-options';
import { explainConnectFailure } from './connect-failure';

export async function connectClient(config: Pick<Config, 'temporal'>): Promise<Client> {
  const options = temporalConnectionOptions(config);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: '5 seconds' });
  } catch (err) {
    throw explainConnectFailure(describeTemporalConnection(config), usesTls(config), err);
  }
  return new Client({ connection, namespace: config.temporal.namespace });
}
