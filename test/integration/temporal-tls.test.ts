// Temporal over TLS: through a TLS-terminating gRPC proxy (nginx) in front of the dev server, a client and a worker with the right client certificate or API key run a workflow; the others are refused with an error naming the setting.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import type { Config, ConfigInput } from '../../src/config/schema';
import { runPreflight } from '../../src/operations/preflight';
import { connectClient } from '../../src/temporal/connect';
import { createWorker } from '../../src/temporal/worker';
import { isolatedConfig } from '../support/backup-fixture';
import { generatePki, startGrpcTlsProxy, type GrpcTlsProxy, type TestPki } from '../support/grpc-tls-proxy';
import { temporalHarness } from '../support/temporal';

const API_KEY_ENV = 'VAULTPAM_TEST_TEMPORAL_API_KEY';

describe('Temporal over TLS through a TLS-terminating proxy', () => {
  let dir: string;
  let pki: TestPki;
  let proxy: GrpcTlsProxy;
  let base: Config;
  const apiKey = randomBytes(24).toString('hex');

  /** The isolated configuration with another `temporal` section (the dev server's own address is the proxy's upstream). */
  const withTemporal = (temporal: Partial<ConfigInput['temporal']>): Config => parseConfig({ ...base, temporal: { ...base.temporal, ...temporal } });
  const mtls = (cert: string, key: string) =>
    withTemporal({ address: proxy.mtlsAddress, tls: { serverNameOverride: 'localhost', serverRootCA: { file: pki.caCert }, clientCert: { file: cert }, clientKey: { file: key } } });

  beforeAll(async () => {
    base = isolatedConfig();
    dir = mkdtempSync(join(tmpdir(), 'vaultpam-tls-'));
    pki = generatePki(dir);
    proxy = await startGrpcTlsProxy(base.temporal.address, pki, apiKey);
    process.env[API_KEY_ENV] = apiKey;
  });
  afterAll(async () => {
    await proxy?.stop();
    delete process.env[API_KEY_ENV];
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the preflight workflow with client and worker both connected as `config` says; returns what the proxy logged meanwhile. */
  async function preflightThroughProxy(config: Config) {
    const h = await temporalHarness(config);
    try {
      const { workflowId, report } = await h.withWorker(() => runPreflight(h.client, h.config, 'production', h.taskQueue));
      const handle = h.client.workflow.getHandle(workflowId);
      const description = await handle.describe();
      const history = JSON.stringify(await handle.fetchHistory());
      return { report, status: description.status.name, history, accessLog: readFileSync(join(dir, 'access.log'), 'utf8') };
    } finally {
      await h.close();
    }
  }

  it('runs a workflow with client and worker presenting a certificate the proxy\'s CA signed (mutual TLS)', async () => {
    const run = await preflightThroughProxy(mtls(pki.clientCert, pki.clientKey));
    expect(run.status).toBe('COMPLETED');
    expect(run.report.checks.map((c) => c.check)).toContain('postgres');
    // The worker's polls went through the proxy, not around it.
    expect(run.accessLog).toMatch(/PollWorkflowTaskQueue/);
    expect(run.accessLog).toMatch(/PollActivityTaskQueue/);
    // Neither the key nor its location's content is in the history.
    const keyBody = readFileSync(pki.clientKey, 'utf8').split('\n')[1]!;
    expect(run.history).not.toContain(keyBody);
  });

  it('refuses a client with no certificate, or one from another CA, naming the settings to fix', async () => {
    const noCertificate = withTemporal({ address: proxy.mtlsAddress, tls: { serverNameOverride: 'localhost', serverRootCA: { file: pki.caCert } } });
    await expect(connectClient(noCertificate)).rejects.toThrow(/VPB_ERR_TEMPORAL_REFUSED.*HTTP status code 400.*temporal\.tls\.clientCert and temporal\.tls\.clientKey/);
    const stranger = mtls(pki.strangerCert, pki.strangerKey);
    await expect(connectClient(stranger)).rejects.toThrow(/VPB_ERR_TEMPORAL_REFUSED.*temporal\.tls\.clientCert/);
    // The worker's connection (the SDK's native core) is refused the same way.
    await expect(createWorker({ config: stranger, taskQueue: 'never-polled' })).rejects.toThrow(/VPB_ERR_TEMPORAL_REFUSED.*400 Bad Request.*temporal\.tls\.clientCert/);
  });

  it('refuses a client that does not trust the server\'s certificate, pointing at serverRootCA', async () => {
    const untrusting = withTemporal({ address: proxy.mtlsAddress, tls: { serverNameOverride: 'localhost', clientCert: { file: pki.clientCert }, clientKey: { file: pki.clientKey } } });
    await expect(createWorker({ config: untrusting, taskQueue: 'never-polled' })).rejects.toThrow(/VPB_ERR_TEMPORAL_TLS.*UnknownIssuer.*temporal\.tls\.serverRootCA/);
    await expect(connectClient(untrusting)).rejects.toThrow(/VPB_ERR_TEMPORAL_TLS.*temporal\.tls\.serverRootCA/);
  });

  it('runs a workflow with an API key over TLS, and refuses a wrong key', async () => {
    const keyed = withTemporal({ address: proxy.apiKeyAddress, tls: { serverNameOverride: 'localhost', serverRootCA: { file: pki.caCert } }, apiKey: { env: API_KEY_ENV } });
    const run = await preflightThroughProxy(keyed);
    expect(run.status).toBe('COMPLETED');
    expect(run.history).not.toContain(apiKey);

    process.env.VAULTPAM_TEST_WRONG_TEMPORAL_KEY = 'not-the-key';
    const wrong = withTemporal({ address: proxy.apiKeyAddress, tls: { serverNameOverride: 'localhost', serverRootCA: { file: pki.caCert } }, apiKey: { env: 'VAULTPAM_TEST_WRONG_TEMPORAL_KEY' } });
    const refusal = await connectClient(wrong).then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(refusal).toMatch(/VPB_ERR_TEMPORAL_REFUSED.*401.*temporal\.apiKey/);
    // The message names where the key comes from, never the key.
    expect(refusal).toContain(`env:VAULTPAM_TEST_WRONG_TEMPORAL_KEY`);
    expect(refusal).not.toContain('not-the-key');
  });
});
