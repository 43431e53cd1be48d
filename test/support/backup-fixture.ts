// A backup configuration of its own for one test file: the local stack with locations under a unique prefix.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load';
import { localStackConfig, localStackDir } from '../../src/config/local-stack';
import type { Config, ConfigInput } from '../../src/config/schema';
import { loadSandboxConfig } from '../../sandbox/sandbox-config';
import { seed, type SeedOptions } from '../../sandbox/seed';

export function isolatedConfig(extra: (base: ConfigInput) => Partial<ConfigInput> = () => ({})): Config {
  const base = localStackConfig();
  const suffix = randomBytes(4).toString('hex');
  const prefix = `test-${suffix}`;
  const input: ConfigInput = {
    ...base,
    // A deployment name of its own: its own backup workflow id and catalog, whatever else runs on the server.
    deployment: { ...base.deployment, name: `sandbox-${suffix}` },
    locations: base.locations.map((l) => ({ ...l, prefix })),
  };
  return parseConfig({ ...input, ...extra(input) });
}

export async function seedSandbox(which: 'production' | 'staging', options: SeedOptions) {
  const config = await loadSandboxConfig(join(localStackDir(), 'sandbox', `${which}.json`));
  return seed(config, options);
}

/**
 * The shared production sandbox holds at least `count` recordings (seeded with a resource to launch them against
 * when missing): tests that interrupt a copy need one long enough to interrupt, whatever ran before them.
 */
export async function ensureRecordings(count: number, recordingBytes: number): Promise<void> {
  const config = await loadSandboxConfig(join(localStackDir(), 'sandbox', 'production.json'));
  const { createS3Client } = await import('../../src/storage');
  const client = createS3Client(config.s3, config.s3.secretKey);
  let present = 0;
  for await (const _ of client.listObjectsV2(config.s3.bucket, '', true) as AsyncIterable<unknown>) present += 1;
  if (present >= count) return;
  await seed(config, { organisations: 1, usersPerOrg: 1, resources: 1, connectors: 0, auditEntries: 0, recordings: count - present, recordingBytes });
}
