// Ed25519 signing and verification of restore statements over their canonical JSON (node:crypto; never in a workflow).
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../catalog/manifest-mac';
import { signedStatementSchema, type SignedStatement, type Statement } from './signed-statement';

/** Thrown when a statement is malformed, signed by an unknown key, or its signature does not verify. */
export class StatementSignatureError extends Error {
  override readonly name = 'StatementSignatureError';
}

/** What is signed: a domain label first, so a signature over anything else this project signs can never pass as one. */
function signedBytes(statement: Statement): Buffer {
  return Buffer.from(`vaultpam-backup restore statement v1\n${canonicalJson(statement)}`, 'utf8');
}

export function privateSigningKey(pem: string, where: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new StatementSignatureError(`${where} is not a private key in PEM (PKCS8) form (${(err as Error).message}); generate one with: openssl genpkey -algorithm ed25519`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new StatementSignatureError(`${where} is an ${key.asymmetricKeyType} key; approvals are signed with Ed25519 (openssl genpkey -algorithm ed25519)`);
  return key;
}

export function publicVerifyingKey(pem: string, where: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new StatementSignatureError(`${where} is not a public key in PEM form (${(err as Error).message}); derive it with: openssl pkey -in signing-key.pem -pubout`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new StatementSignatureError(`${where} is an ${key.asymmetricKeyType} key; approvals are verified with Ed25519 keys`);
  return key;
}

export function signStatement(statement: Statement, key: KeyObject, keyId: string): SignedStatement {
  return { statement, keyId, signature: sign(null, signedBytes(statement), key).toString('base64') };
}

/**
 * The statement, once its shape is right, its key is one of `keys` and its signature verifies over exactly this
 * statement; a StatementSignatureError naming what is wrong otherwise.
 */
export function verifySignedStatement(signed: unknown, keys: ReadonlyMap<string, KeyObject>): Statement {
  const parsed = signedStatementSchema.safeParse(signed);
  if (!parsed.success) throw new StatementSignatureError(`the signed statement is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const { statement, keyId, signature } = parsed.data;
  const key = keys.get(keyId);
  if (!key) throw new StatementSignatureError(`the statement is signed with key "${keyId}", which is not in approvals.publicKeys (known: ${[...keys.keys()].join(', ') || 'none'})`);
  const ok = verify(null, signedBytes(statement), key, Buffer.from(signature, 'base64'));
  if (!ok) throw new StatementSignatureError(`the signature of the ${statement.kind} by ${statement.principal} does not verify with key "${keyId}": the statement was altered or signed with another key`);
  return statement;
}
