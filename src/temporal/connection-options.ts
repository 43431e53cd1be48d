// The Temporal connection's options (address, TLS, mutual TLS, API key) from the configuration; PEM files and keys are read here, inside the connecting process.
import type { TLSConfig } from '@temporalio/client';
import type { Config, SecretRef } from '../config/schema';
import { describeSecretRef, resolveSecret } from '../config/secrets';
import { VaultpamBackupError } from '../errors/catalogue';

export interface TemporalConnectionOptions {
  address: string;
  /** Absent: plain text (the local dev server). */
  tls?: TLSConfig;
  apiKey?: string;
}

/** Reads a PEM source and checks it holds the kind of block expected, naming the field (never the content) if not. */
function readPem(field: string, ref: SecretRef, kind: 'CERTIFICATE' | 'PRIVATE KEY', secret: (ref: SecretRef) => string): Buffer {
  const text = secret(ref);
  const block = kind === 'CERTIFICATE' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
  if (!block.test(text)) {
    throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `${field} (${describeSecretRef(ref)}) holds no PEM ${kind.toLowerCase()} (no "-----BEGIN ${kind}-----" line); give the PEM file`);
  }
  return Buffer.from(text);
}

export function temporalConnectionOptions(config: Pick<Config, 'temporal'>, secret: (ref: SecretRef) => string = (ref) => resolveSecret(ref)): TemporalConnectionOptions {
  const { address, tls, apiKey } = config.temporal;
  const options: TemporalConnectionOptions = { address };
  if (tls === true || (tls === undefined && apiKey)) options.tls = {};
  else if (typeof tls === 'object') {
    options.tls = {
      ...(tls.serverNameOverride ? { serverNameOverride: tls.serverNameOverride } : {}),
      ...(tls.serverRootCA ? { serverRootCACertificate: readPem('temporal.tls.serverRootCA', tls.serverRootCA, 'CERTIFICATE', secret) } : {}),
      ...(tls.clientCert && tls.clientKey
        ? { clientCertPair: { crt: readPem('temporal.tls.clientCert', tls.clientCert, 'CERTIFICATE', secret), key: readPem('temporal.tls.clientKey', tls.clientKey, 'PRIVATE KEY', secret) } }
        : {}),
    };
  }
  if (apiKey) options.apiKey = secret(apiKey);
  return options;
}

/** Names what the connection uses, for messages and logs: the files and variables, never their content. */
export function describeTemporalConnection(config: Pick<Config, 'temporal'>): string {
  const { address, tls, apiKey } = config.temporal;
  const parts = [address];
  if (typeof tls === 'object') {
    parts.push(tls.clientCert ? `mutual TLS (client certificate ${describeSecretRef(tls.clientCert)})` : 'TLS');
    if (tls.serverRootCA) parts.push(`server CA ${describeSecretRef(tls.serverRootCA)}`);
    if (tls.serverNameOverride) parts.push(`server name ${tls.serverNameOverride}`);
  } else if (tls === true || apiKey) parts.push('TLS');
  if (apiKey) parts.push(`API key ${describeSecretRef(apiKey)}`);
  return parts.join(', ');
}

/** Whether TLS is in play (explicitly, or implied by an API key): a failure to connect may then be the handshake's. */
export function usesTls(config: Pick<Config, 'temporal'>): boolean {
  return Boolean(config.temporal.tls) || config.temporal.apiKey !== undefined;
}
