// The `temporal` section's TLS, mutual TLS and API key settings: what the schema refuses and the connection options built from it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { localStackConfig } from '../../src/config/local-stack';
import type { ConfigInput } from '../../src/config/schema';
import { describeTemporalConnection, temporalConnectionOptions } from '../../src/temporal/connection-options';

const withTemporal = (temporal: ConfigInput['temporal']) => parseConfig({ ...localStackConfig({}), temporal });
const dir = mkdtempSync(join(tmpdir(), 'vaultpam-tls-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIGH-secret-body\n-----END PRIVATE KEY-----\n';
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return { file: path };
};

describe('temporal.tls and temporal.apiKey', () => {
  it('refuses a client certificate without its key, and a key without its certificate, naming the missing field', () => {
    expect(() => withTemporal({ tls: { clientCert: { file: '/etc/c.pem' } } })).toThrow(/temporal\.tls\.clientKey: .*without its private key: add temporal\.tls\.clientKey/);
    expect(() => withTemporal({ tls: { clientKey: { file: '/etc/c.key' } } })).toThrow(/temporal\.tls\.clientCert: .*without its certificate/);
  });

  it('refuses an API key with TLS turned off, a misspelt field, and a path written where a reference belongs', () => {
    expect(() => withTemporal({ tls: false, apiKey: { env: 'KEY' } })).toThrow(/temporal\.tls: temporal\.apiKey is sent only over TLS/);
    expect(() => withTemporal({ tls: { clientCrt: { file: '/c.pem' } } })).toThrow(/temporal\.tls: Unrecognized key: "clientCrt"/);
    expect(() => withTemporal({ tls: { serverRootCA: '/etc/ca.pem' } })).toThrow(/temporal\.tls\.serverRootCA: name where the value is, as \{"env": "NAME"\} or \{"file": "\/path"\}/);
    expect(() => withTemporal({ tls: 'yes' })).toThrow(/temporal\.tls: use true .* or an object with any of serverNameOverride, serverRootCA, clientCert, clientKey/);
  });

  it('builds plain text by default, system-root TLS for `true` or an API key, and mutual TLS from PEM files', () => {
    expect(temporalConnectionOptions(withTemporal({ address: 'h:7233' }))).toEqual({ address: 'h:7233' });
    expect(temporalConnectionOptions(withTemporal({ address: 'h:7233', tls: true }))).toEqual({ address: 'h:7233', tls: {} });
    const keyed = withTemporal({ address: 'ns.acct.tmprl.cloud:7233', apiKey: { env: 'KEY' } });
    expect(temporalConnectionOptions(keyed, () => 'k-123')).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'k-123' });

    const mtls = withTemporal({ address: 'h:7233', tls: { serverNameOverride: 'temporal.internal', serverRootCA: file('ca.pem', CERT), clientCert: file('c.pem', CERT), clientKey: file('c.key', KEY) } });
    const options = temporalConnectionOptions(mtls);
    expect(options.tls?.serverNameOverride).toBe('temporal.internal');
    expect(Buffer.from(options.tls!.serverRootCACertificate!).toString()).toBe(CERT.trimEnd());
    expect(Buffer.from(options.tls!.clientCertPair!.key).toString()).toBe(KEY.trimEnd());
    // What a message or a log may say: the files, never their content.
    const described = describeTemporalConnection(mtls);
    expect(described).toBe(`h:7233, mutual TLS (client certificate file:${join(dir, 'c.pem')}), server CA file:${join(dir, 'ca.pem')}, server name temporal.internal`);
    expect(described).not.toContain('secret-body');
  });

  it('refuses a file that holds no PEM block, naming the field and the file but not what it holds', () => {
    const swapped = withTemporal({ tls: { clientCert: file('swapped.pem', KEY), clientKey: file('swapped.key', CERT) } });
    let message = '';
    try {
      temporalConnectionOptions(swapped);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/VPB_ERR_CONFIG_INVALID.*temporal\.tls\.clientCert \(file:.*swapped\.pem\) holds no PEM certificate/);
    expect(message).not.toContain('secret-body');
  });
});
