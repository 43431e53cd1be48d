// A TLS-terminating gRPC proxy (Debian's nginx) in front of the dev server, which speaks plain text: one port demands a client certificate, another a bearer API key.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx'];

/** The nginx binary, installed with apt when missing (the package's own service is never started: we run our own). */
export function ensureNginx(): string {
  const found = () => NGINX_CANDIDATES.find((path) => existsSync(path));
  const present = found();
  if (present) return present;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'ignore', env });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx'], { stdio: 'ignore', env });
  const installed = found();
  if (!installed) throw new Error('nginx is not installed and `apt-get install -y nginx` did not provide it; install nginx to run this test');
  return installed;
}

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by a CA the proxy does not trust. */
  strangerCert: string;
  strangerKey: string;
}

/** A CA, a server certificate for 127.0.0.1 / localhost, a client certificate it signed, and one a stranger CA signed. */
export function generatePki(dir: string): TestPki {
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const key = (name: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path(name));
  const selfSignedCa = (name: string, cn: string) => {
    key(`${name}.key`);
    openssl('req', '-x509', '-new', '-key', path(`${name}.key`), '-subj', `/CN=${cn}`, '-days', '2', '-out', path(`${name}.pem`), '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  };
  const issue = (name: string, cn: string, ca: string, extensions: string) => {
    key(`${name}.key`);
    openssl('req', '-new', '-key', path(`${name}.key`), '-subj', `/CN=${cn}`, '-out', path(`${name}.csr`));
    execFileSync('bash', ['-c', `printf '%s\\n' "$EXT" > ${name}.ext`], { cwd: dir, env: { ...process.env, EXT: extensions } });
    openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', path(`${ca}.pem`), '-CAkey', path(`${ca}.key`), '-CAcreateserial', '-days', '2', '-extfile', path(`${name}.ext`), '-out', path(`${name}.pem`));
  };
  selfSignedCa('ca', 'vaultpam-backup test CA');
  selfSignedCa('stranger-ca', 'another CA');
  issue('server', 'localhost', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE');
  issue('client', 'vaultpam-backup worker', 'ca', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE');
  issue('stranger', 'vaultpam-backup worker', 'stranger-ca', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE');
  return {
    dir,
    caCert: path('ca.pem'),
    serverCert: path('server.pem'),
    serverKey: path('server.key'),
    clientCert: path('client.pem'),
    clientKey: path('client.key'),
    strangerCert: path('stranger.pem'),
    strangerKey: path('stranger.key'),
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => Promise<string>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${await log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on 127.0.0.1:${port} within ${timeoutMs} ms: ${await log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface GrpcTlsProxy {
  /** TLS; a client certificate signed by the test CA is required. */
  mtlsAddress: string;
  /** TLS; `authorization: Bearer <apiKey>` is required. */
  apiKeyAddress: string;
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * nginx in the foreground, one process (no user switch, so it reads the test's files whoever runs it), every path
 * under `pki.dir`. Its long timeouts let the worker's long polls (up to 70 s) pass.
 */
export async function startGrpcTlsProxy(upstream: string, pki: TestPki, apiKey: string): Promise<GrpcTlsProxy> {
  const nginx = ensureNginx();
  const [mtlsPort, apiKeyPort] = [await freePort(), await freePort()];
  const dir = pki.dir;
  const common = `
    ssl_certificate ${pki.serverCert};
    ssl_certificate_key ${pki.serverKey};
    grpc_read_timeout 300s;
    grpc_send_timeout 300s;
    client_body_timeout 300s;`;
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} info;
events { worker_connections 256; }
http {
  access_log ${join(dir, 'access.log')};
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_timeout 300s;
  http2_max_requests 100000;
  server {
    listen 127.0.0.1:${mtlsPort} ssl http2;
    ${common}
    ssl_client_certificate ${pki.caCert};
    ssl_verify_client on;
    location / { grpc_pass grpc://${upstream}; }
  }
  server {
    listen 127.0.0.1:${apiKeyPort} ssl http2;
    ${common}
    location / {
      if ($http_authorization != "Bearer ${apiKey}") { return 401; }
      grpc_pass grpc://${upstream};
    }
  }
}
`;
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const errorLog = () => readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
  const child = spawn(nginx, ['-p', dir, '-c', confPath, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = async () => `${stderr}${await errorLog()}`;
  try {
    await waitForPort(mtlsPort, child, log, 15_000);
    await waitForPort(apiKeyPort, child, log, 15_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    mtlsAddress: `127.0.0.1:${mtlsPort}`,
    apiKeyAddress: `127.0.0.1:${apiKeyPort}`,
    errorLog,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
