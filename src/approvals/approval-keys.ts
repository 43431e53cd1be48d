// The configured approval keys: the workers' public keys (verify), the API's and CLI's private key (sign).
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import type { ApprovalsConfig } from '../config/schema';
import { describeSecretRef, resolveSecret } from '../config/secrets';
import { VaultpamBackupError } from '../errors/catalogue';
import { privateSigningKey, publicVerifyingKey, signStatement } from './statement-signature';
import type { SignedStatement, Statement } from './signed-statement';

/** approvals.publicKeys, read and parsed: id → key. A key that cannot be read is a configuration error naming it. */
export function loadPublicKeys(config: ApprovalsConfig): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const entry of config.publicKeys) {
    let pem: string;
    if ('pem' in entry) pem = entry.pem;
    else {
      try {
        pem = readFileSync(entry.file, 'utf8');
      } catch (err) {
        throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', `approvals.publicKeys "${entry.id}": cannot read ${entry.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    keys.set(entry.id, publicVerifyingKey(pem, `approvals.publicKeys "${entry.id}"`));
  }
  return keys;
}

/** Signs statements as this process: the API and the CLI hold approvals.signingKey; a worker never needs it. */
export interface StatementSigner {
  keyId: string;
  sign(statement: Statement): SignedStatement;
}

export function statementSigner(config: ApprovalsConfig): StatementSigner {
  if (!config.signingKey) {
    throw new VaultpamBackupError('VPB_ERR_CONFIG_INVALID', 'approvals.signingKey is not configured: this process cannot sign restore requests or approvals (name an Ed25519 PKCS8 PEM, e.g. {"file": "/etc/vaultpam-backup/approvals-signing-key.pem"}, made with: openssl genpkey -algorithm ed25519)');
  }
  const where = `approvals.signingKey (${describeSecretRef(config.signingKey)})`;
  const key = privateSigningKey(resolveSecret(config.signingKey), where);
  return { keyId: config.signingKeyId, sign: (statement) => signStatement(statement, key, config.signingKeyId) };
}
