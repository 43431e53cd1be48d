// Turns a failed connection to Temporal (client or worker) into an error that says which setting to fix: address, server CA, client certificate or API key.
import { VaultpamBackupError } from '../errors/catalogue';

const REFUSED_CERTIFICATE = /HTTP status code 400|status: 400 Bad Request/i;
const REFUSED_CREDENTIAL = /HTTP status code 40[13]|status: 40[13] |UNAUTHENTICATED|PERMISSION_DENIED|Unauthorized|Forbidden/i;
const UNTRUSTED_SERVER = /UnknownIssuer|self[- ]signed|unable to (get|verify)|certificate verify failed|CERT_|InvalidCertificate|NotValidForName|Hostname\/IP does not match|altnames/i;

/**
 * `target` describes the connection (address, TLS, the files used; never their content). `secured` says whether TLS or
 * an API key is configured, so a plain "cannot connect" can also point at the handshake.
 */
export function explainConnectFailure(target: string, secured: boolean, err: unknown): VaultpamBackupError {
  const detail = err instanceof Error ? [err.message, err.cause instanceof Error ? err.cause.message : ''].filter(Boolean).join(': ') : String(err);
  if (REFUSED_CREDENTIAL.test(detail)) {
    return new VaultpamBackupError('VPB_ERR_TEMPORAL_REFUSED', target, detail, 'It did not accept the credential: check temporal.apiKey (a key of this namespace, not expired) or the client certificate in temporal.tls');
  }
  if (secured && REFUSED_CERTIFICATE.test(detail)) {
    return new VaultpamBackupError(
      'VPB_ERR_TEMPORAL_REFUSED',
      target,
      detail,
      'A TLS-terminating proxy answers HTTP 400 to a client without an accepted certificate: set temporal.tls.clientCert and temporal.tls.clientKey to a certificate signed by the CA the server trusts',
    );
  }
  if (UNTRUSTED_SERVER.test(detail)) {
    return new VaultpamBackupError('VPB_ERR_TEMPORAL_TLS', target, detail, "The server's certificate is not trusted for this name: set temporal.tls.serverRootCA to the CA that signed it, and temporal.tls.serverNameOverride to a name it holds if the address does not");
  }
  if (secured) {
    return new VaultpamBackupError(
      'VPB_ERR_TEMPORAL_TLS',
      target,
      detail,
      "Check that temporal.address is the server's TLS port, that temporal.tls.serverRootCA (or the system's roots) trusts its certificate, and temporal.tls.serverNameOverride if the address is not a name in that certificate",
    );
  }
  return new VaultpamBackupError('VPB_ERR_TEMPORAL_UNREACHABLE', target, detail);
}
