// Signed restore statements: a signature verifies only over the exact statement, with the key it names, among known keys.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadPublicKeys, statementSigner } from '../../src/approvals/approval-keys';
import { approvalRejection, approvalsSuffice } from '../../src/approvals/approval-rules';
import type { RestoreApprovalStatement } from '../../src/approvals/signed-statement';
import { StatementSignatureError, privateSigningKey, signStatement, verifySignedStatement } from '../../src/approvals/statement-signature';
import { parseConfig } from '../../src/config/load';
import { localStackConfig } from '../../src/config/local-stack';

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const approval: RestoreApprovalStatement = {
  kind: 'restore-approval',
  workflowId: 'restore-sandbox',
  restoreId: 'restore-sandbox-1a2b3c4d',
  backupId: '20261127T020000Z-1a2b3c',
  lossReportDigest: 'a'.repeat(64),
  principal: 'alice',
  issuedAt: '2026-12-02T01:00:00.000Z',
};

describe('signed restore statements', () => {
  const ours = keyPair();
  const keys = new Map([['k1', ours.publicKey]]);

  it('verifies a statement signed with a known key, whatever the order of its fields', () => {
    const signed = signStatement(approval, ours.privateKey, 'k1');
    expect(verifySignedStatement(signed, keys)).toEqual(approval);
    const reordered = { ...signed, statement: Object.fromEntries(Object.entries(approval).reverse()) };
    expect(verifySignedStatement(reordered, keys)).toEqual(approval);
  });

  it('refuses a tampered statement: another principal, digest, or an added break-glass', () => {
    const signed = signStatement(approval, ours.privateKey, 'k1');
    for (const statement of [{ ...approval, principal: 'mallory' }, { ...approval, lossReportDigest: 'b'.repeat(64) }, { ...approval, breakGlass: { reason: 'urgent, trust me' } }]) {
      expect(() => verifySignedStatement({ ...signed, statement }, keys)).toThrow(/does not verify with key "k1": the statement was altered or signed with another key/);
    }
    const flipped = Buffer.from(signed.signature, 'base64');
    flipped[0] = flipped[0]! ^ 1;
    expect(() => verifySignedStatement({ ...signed, signature: flipped.toString('base64') }, keys)).toThrow(StatementSignatureError);
  });

  it('refuses a statement signed with another key under a known id, and a key id it does not know', () => {
    const other = keyPair();
    expect(() => verifySignedStatement(signStatement(approval, other.privateKey, 'k1'), keys)).toThrow(/does not verify with key "k1"/);
    expect(() => verifySignedStatement(signStatement(approval, ours.privateKey, 'k9'), keys)).toThrow(/signed with key "k9", which is not in approvals.publicKeys \(known: k1\)/);
  });

  it('refuses malformed envelopes and statements, naming the field', () => {
    expect(() => verifySignedStatement({ statement: { ...approval, kind: 'restore-anything' }, keyId: 'k1', signature: 'x' }, keys)).toThrow(/malformed: statement\.kind/);
    expect(() => verifySignedStatement({ statement: approval, keyId: 'k1' }, keys)).toThrow(/malformed: signature/);
    expect(() => verifySignedStatement({ statement: { ...approval, extra: 1 }, keyId: 'k1', signature: 'x' }, keys)).toThrow(/malformed/);
  });

  it('signs with the configured key and verifies with the configured public keys (the local stack pair)', () => {
    const config = parseConfig(localStackConfig());
    const signed = statementSigner(config.approvals).sign(approval);
    expect(signed.keyId).toBe('local-approvals');
    expect(verifySignedStatement(signed, loadPublicKeys(config.approvals))).toEqual(approval);
    // Inline PEM works as well as a file.
    const inline = parseConfig({ ...localStackConfig(), approvals: { publicKeys: [{ id: 'k1', pem: ours.publicPem }] } });
    expect(verifySignedStatement(signStatement(approval, ours.privateKey, 'k1'), loadPublicKeys(inline.approvals))).toEqual(approval);
  });

  it('explains a missing signing key, a key of the wrong kind, and a bad public key entry', () => {
    const config = parseConfig({ ...localStackConfig(), approvals: { publicKeys: [] } });
    expect(() => statementSigner(config.approvals)).toThrow(/approvals.signingKey is not configured.*openssl genpkey -algorithm ed25519/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => privateSigningKey(rsa, 'approvals.signingKey')).toThrow(/is an rsa key; approvals are signed with Ed25519/);
    expect(() => parseConfig({ ...localStackConfig(), approvals: { publicKeys: [{ id: 'k1', pem: 'hello' }] } })).toThrow(/approvals\.publicKeys\.0/);
    expect(() => parseConfig({ ...localStackConfig(), restore: { approvals: { production: -1 } } })).toThrow(/restore\.approvals\.production: use 0/);
  });
});

describe('four-eyes rules', () => {
  const policy = { approvalsRequired: 2, breakGlassEnabled: true };

  it('refuses the requester and a second approval by the same principal; counts distinct principals', () => {
    expect(approvalRejection({ principal: 'bob' }, 'bob', [], policy)).toMatch(/cannot be approved by the principal who requested it/);
    expect(approvalRejection({ principal: 'carol' }, 'bob', [{ principal: 'carol' }], policy)).toMatch(/carol has already approved/);
    expect(approvalRejection({ principal: 'carol' }, 'bob', [{ principal: 'dave' }], policy)).toBeUndefined();
    expect(approvalsSuffice([{ principal: 'carol' }], policy)).toBe(false);
    expect(approvalsSuffice([{ principal: 'carol' }, { principal: 'carol' }], policy)).toBe(false);
    expect(approvalsSuffice([{ principal: 'carol' }, { principal: 'dave' }], policy)).toBe(true);
  });

  it('lets one break-glass approval stand for all, only when enabled and with a reason of 10 characters or more', () => {
    expect(approvalsSuffice([{ principal: 'carol', breakGlass: { reason: 'database lost in outage' } }], policy)).toBe(true);
    expect(approvalsSuffice([{ principal: 'carol', breakGlass: { reason: 'database lost in outage' } }], { ...policy, breakGlassEnabled: false })).toBe(false);
    expect(approvalRejection({ principal: 'carol', breakGlass: { reason: 'urgent' } }, 'bob', [], policy)).toMatch(/at least 10 characters/);
    expect(approvalRejection({ principal: 'carol', breakGlass: { reason: 'database lost in outage' } }, 'bob', [], { ...policy, breakGlassEnabled: false })).toMatch(/break-glass approvals are disabled/);
    expect(approvalRejection({ principal: 'bob', breakGlass: { reason: 'database lost in outage' } }, 'bob', [], policy)).toMatch(/principal who requested it/);
  });
});
