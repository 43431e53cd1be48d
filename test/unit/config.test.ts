// Configuration: the embedded default validates; bad input names the field and the fix; secrets resolve and stay out of messages.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig, targetDeployment } from '../../src/config/load';
import { localStackConfig } from '../../src/config/local-stack';
import { resolveSecret } from '../../src/config/secrets';
import { startApi } from '../../src/api/server';

describe('configuration', () => {
  it('accepts the embedded local-stack default, with two regions, and freezes it', () => {
    const config = loadConfig({ env: { VAULTPAM_STACK_DIR: '/srv/stack' } });
    expect(config.deployment.name).toBe('sandbox');
    expect(new Set(config.locations.map((l) => l.region)).size).toBe(2);
    expect(config.temporal.address).toBe('127.0.0.1:7233');
    expect(Object.isFrozen(config.deployment.postgres)).toBe(true);
    expect(() => {
      (config.backup as { concurrency: number }).concurrency = 1;
    }).toThrow(TypeError);
  });

  it('takes ports from the environment and rejects a non-port with the variable named', () => {
    // Production has a cluster of its own; staging keeps the other.
    const config = loadConfig({ env: { VAULTPAM_PG_PORT: '6000', VAULTPAM_PG_PRODUCTION_PORT: '6001' } });
    expect(config.deployment.postgres.port).toBe(6001);
    expect(config.staging?.postgres.port).toBe(6000);
    expect(() => loadConfig({ env: { VAULTPAM_PG_PRODUCTION_PORT: '0' } })).toThrow(/VAULTPAM_PG_PRODUCTION_PORT=0 is not a port/);
    expect(() => loadConfig({ env: { VAULTPAM_PG_PORT: 'sixty' } })).toThrow(/VAULTPAM_PG_PORT=sixty is not a port/);
  });

  it('names every wrong field with a code an operator can search for', () => {
    const base = localStackConfig();
    const bad = {
      ...base,
      deployment: { ...base.deployment, name: 'Bad Name!' },
      locations: [base.locations[0], { ...base.locations[0] }],
      encryption: { activeKeyId: 'missing', keys: base.encryption.keys },
    };
    let message = '';
    try {
      parseConfig(bad);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^VPB_ERR_CONFIG_INVALID/);
    expect(message).toMatch(/deployment\.name: use lower-case letters/);
    expect(message).toMatch(/locations\.1\.name: location name "primary" is used twice/);
    expect(message).toMatch(/encryption\.activeKeyId: activeKeyId "missing" names no key/);
  });

  it('takes point-in-time settings with defaults, and names a bad one with its fix', () => {
    const base = localStackConfig();
    const enabled = parseConfig({ ...base, deployment: { ...base.deployment, pointInTime: { enabled: true } } }).deployment.pointInTime;
    expect(enabled).toMatchObject({ enabled: true, slot: 'vaultpam_backup', partialUploadSeconds: 30, baseBackupEveryHours: 24 });
    expect(() => parseConfig({ ...base, deployment: { ...base.deployment, pointInTime: { partialUploadSeconds: 90 } } })).toThrow(/deployment\.pointInTime\.partialUploadSeconds: .*at least once a minute/);
    expect(() => parseConfig({ ...base, deployment: { ...base.deployment, pointInTime: { slot: 'Bad-Slot' } } })).toThrow(/deployment\.pointInTime\.slot: a replication slot name/);
  });

  it('refuses an unknown location kind and a missing secret reference', () => {
    const base = localStackConfig();
    expect(() => parseConfig({ ...base, locations: [{ name: 'x', region: 'r', kind: 'ftp' }] })).toThrow(/locations\.0\.kind/);
    expect(() => parseConfig({ ...base, api: { auth: { mode: 'tokens', tokensFile: { vault: 'x' } } } })).toThrow(/api\.auth\.tokensFile/);
  });

  it('reports an unreadable or malformed configuration file by its path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpb-config-'));
    const path = join(dir, 'config.json');
    writeFileSync(path, '{ not json');
    expect(() => loadConfig({ path })).toThrow(new RegExp(`VPB_ERR_CONFIG_UNREADABLE.*${path}`));
    expect(() => loadConfig({ path: join(dir, 'absent.json') })).toThrow(/VPB_ERR_CONFIG_UNREADABLE/);
  });

  it('takes a point-in-time window in days, 7 by default, and names a bad one with the fix', () => {
    expect(parseConfig(localStackConfig()).pointInTime.windowDays).toBe(7);
    expect(parseConfig({ ...localStackConfig(), pointInTime: { windowDays: 2.5 } }).pointInTime.windowDays).toBe(2.5);
    expect(() => parseConfig({ ...localStackConfig(), pointInTime: { windowDays: 0 } })).toThrow(/pointInTime\.windowDays.*more than 0 days/);
    expect(() => parseConfig({ ...localStackConfig(), pointInTime: { windowDays: '7' } })).toThrow(/pointInTime\.windowDays must be a number of days/);
    expect(() => parseConfig({ ...localStackConfig(), pointInTime: { windowDay: 7 } })).toThrow(/pointInTime/);
  });

  it('refuses the staging target when no staging deployment is configured', () => {
    const { staging: _staging, ...base } = localStackConfig();
    expect(() => targetDeployment(parseConfig(base), 'staging')).toThrow(/target "staging" is not configured/);
  });

  it('resolves secrets from env and files, and never puts the value in an error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpb-secret-'));
    writeFileSync(join(dir, 's'), 'hunter2-file\n');
    expect(resolveSecret({ file: join(dir, 's') })).toBe('hunter2-file');
    expect(resolveSecret({ env: 'X_SECRET' }, { X_SECRET: 'hunter2-env' })).toBe('hunter2-env');
    expect(() => resolveSecret({ env: 'X_SECRET' }, {})).toThrow(/VPB_ERR_SECRET_MISSING.*env:X_SECRET.*set the environment variable X_SECRET/);
    writeFileSync(join(dir, 'empty'), '');
    expect(() => resolveSecret({ file: join(dir, 'empty') })).toThrow(/the file is empty/);
  });

  it('refuses to serve the API beyond loopback in development mode, or at all without api.auth, before connecting anywhere', async () => {
    const base = localStackConfig();
    const open = parseConfig({ ...base, api: { host: '0.0.0.0', port: 8470, auth: { mode: 'development' } }, temporal: { address: '127.0.0.1:1' } });
    await expect(startApi(open)).rejects.toThrow(/VPB_ERR_CONFIG_INVALID.*api\.host is 0\.0\.0\.0 but api\.auth\.mode is "development"/);
    const none = parseConfig({ ...base, api: { host: '127.0.0.1', port: 8470 }, temporal: { address: '127.0.0.1:1' } });
    await expect(startApi(none)).rejects.toThrow(/api\.auth is not set: set api\.auth\.tokensFile and create a token per person with `vaultpam-backup tokens create/);
  });

  it('refuses the old shared api.token, saying how to migrate', () => {
    const base = localStackConfig();
    expect(() => parseConfig({ ...base, api: { token: { file: '/etc/api-token' } } })).toThrow(
      /api\.token: api\.token \(one shared token\) is no longer accepted: one shared token cannot tell people apart.*vaultpam-backup tokens create/,
    );
  });

  it('names what is wrong in api.auth: no way to check a credential, an unknown role, a JWT without a key', () => {
    const base = localStackConfig();
    const api = (auth: unknown) => ({ ...base, api: { auth } });
    expect(() => parseConfig(api({ mode: 'tokens' }))).toThrow(/api\.auth\.tokensFile: mode "tokens" needs a way to check a credential/);
    expect(() => parseConfig(api({ mode: 'open' }))).toThrow(/api\.auth\.mode: use "tokens"/);
    const entry = { id: 'abcdef123456', principal: 'alice', roles: ['superuser'], sha256: 'a'.repeat(64), createdAt: '2026-12-01T00:00:00Z' };
    expect(() => parseConfig(api({ tokens: [entry] }))).toThrow(/api\.auth\.tokens\.0\.roles\.0: use one of the roles viewer, operator, restorer, approver, admin/);
    expect(() => parseConfig(api({ jwt: { issuer: 'https://idp', audience: 'vpb' } }))).toThrow(/api\.auth\.jwt\.jwksUrl: give exactly one of jwksUrl/);
    expect(parseConfig(api({ jwt: { issuer: 'https://idp', audience: 'vpb', jwksUrl: 'https://idp/jwks' } })).api.auth?.jwt).toMatchObject({ principalClaim: 'sub', rolesClaim: 'roles' });
  });
});
