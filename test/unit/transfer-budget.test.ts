// The memory budget for upload buffers: refused by name when it cannot hold a part per upload, and it bounds part size × uploads.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { localStackConfig } from '../../src/config/local-stack';
import { memoryBudgetMiB, type ConfigInput } from '../../src/config/schema';
import { STREAMS_BESIDE_COPY, createDependencies } from '../../src/runtime/dependencies';
import { S3Location, TransferBudget } from '../../src/storage';

const MIB = 1024 * 1024;
const base = localStackConfig({ ...process.env, VAULTPAM_STACK_DIR: '/nonexistent-stack' });
const s3 = base.locations.find((l) => l.kind === 's3')!;
const filesystem = base.locations.find((l) => l.kind === 'filesystem')!;
// Secrets from the environment, so the clients can be built without a stack.
process.env.VPB_TEST_S3_SECRET = 'not-a-real-secret';
const s3Location = (name: string) => ({ ...s3, name, secretKey: { env: 'VPB_TEST_S3_SECRET' } });

function configWith(backup: Partial<NonNullable<ConfigInput['backup']>>, s3Count = 1): ConfigInput {
  const locations = [...Array.from({ length: s3Count }, (_, i) => s3Location(`s3-${i}`)), filesystem];
  const deployment = { ...base.deployment, recordings: { ...base.deployment.recordings, secretKey: { env: 'VPB_TEST_S3_SECRET' } } };
  return { ...base, deployment, locations, backup: { ...base.backup, ...backup } };
}

describe('memory budget for uploads', () => {
  it('refuses a budget that cannot hold one part per upload, naming the value and the least that works', () => {
    expect(() => parseConfig(configWith({ concurrency: 8, memoryBudgetMiB: 32 }))).toThrow(/memoryBudgetMiB 32 is too small.*at least 40/);
    expect(() => parseConfig(configWith({ concurrency: 4, memoryBudgetMiB: 32 }, 2))).toThrow(/memoryBudgetMiB 32 is too small.*2 S3 location\(s\).*at least 40/);
    expect(() => parseConfig(configWith({ memoryBudgetMiB: 8 }))).toThrow(/memoryBudgetMiB/);
    expect(memoryBudgetMiB(parseConfig(configWith({ concurrency: 8, memoryBudgetMiB: 40 })))).toBe(40);
  });

  it('defaults to 64 MiB, raised to what the uploads need when there are many', () => {
    expect(memoryBudgetMiB(parseConfig(configWith({})))).toBe(64);
    expect(memoryBudgetMiB(parseConfig(configWith({ concurrency: 8 }, 2)))).toBe(80);
  });

  it('bounds part size × concurrent uploads by the budget, for the backup locations and the restore alike', () => {
    const cases: [Partial<NonNullable<ConfigInput['backup']>>, number][] = [
      [{ concurrency: 8 }, 1],
      [{ concurrency: 8, memoryBudgetMiB: 40 }, 1],
      [{ concurrency: 8, memoryBudgetMiB: 256 }, 1],
      [{ concurrency: 2, memoryBudgetMiB: 1024 }, 1],
      [{ concurrency: 4 }, 3],
    ];
    for (const [backup, s3Count] of cases) {
      const config = parseConfig(configWith(backup, s3Count));
      const deps = createDependencies(config);
      const budget = deps.transferBudget();
      expect(budget.limitBytes).toBe(memoryBudgetMiB(config) * MIB);
      const locations = deps.locations().filter((l): l is S3Location => l instanceof S3Location);
      expect(locations).toHaveLength(s3Count);
      const uploads = config.backup.concurrency * s3Count;
      for (const location of locations) {
        // One part per upload always fits; two per upload whenever parts are above S3's 5 MiB floor.
        expect(location.partSize * uploads).toBeLessThanOrEqual(budget.limitBytes);
        if (location.partSize > 5 * MIB) expect(2 * location.partSize * uploads).toBeLessThanOrEqual(budget.limitBytes);
      }
      const restorePart = deps.recordingsClient('production').partSize;
      expect(restorePart * config.backup.concurrency).toBeLessThanOrEqual(budget.limitBytes);
    }
  });

  it('leaves a recording room for its part beside the index and blob-list streams, even one upload at a time', async () => {
    for (const [backup, s3Count] of [[{ concurrency: 1 }, 1], [{ concurrency: 1, memoryBudgetMiB: 64 }, 2], [{ concurrency: 8 }, 1]] as const) {
      const config = parseConfig(configWith(backup, s3Count));
      const deps = createDependencies(config);
      const partSize = (deps.locations().find((l) => l instanceof S3Location) as S3Location).partSize;
      // Every stream beside the copy holds a part at each S3 location, then each location's share of the copy's uploads asks for one.
      const budget = new TransferBudget(deps.transferBudget().limitBytes, 50);
      for (let i = 0; i < STREAMS_BESIDE_COPY * s3Count; i++) await budget.take(partSize);
      for (let i = 0; i < config.backup.concurrency * s3Count; i++) await budget.take(partSize);
      expect(budget.overrunCount, JSON.stringify({ backup, s3Count, partSize })).toBe(0);
    }
  });

  it('grants each upload its first buffer in turn, a second only within the limit, and keeps no buffer once idle', async () => {
    const budget = new TransferBudget(10 * MIB);
    const first = await budget.take(4 * MIB);
    const second = await budget.take(4 * MIB);
    expect(budget.tryTake(4 * MIB)).toBeUndefined(); // 12 MiB would pass the limit
    const small = budget.tryTake(64 * 1024)!;
    expect(small.length).toBe(64 * 1024);
    expect(budget.bytesHeld).toBe(8 * MIB + 64 * 1024);

    // Past the limit, uploads wait, and are served in the order they asked.
    const served: string[] = [];
    const third = budget.take(4 * MIB).then((buffer) => (served.push('third'), buffer));
    const fourth = budget.take(1 * MIB).then((buffer) => (served.push('fourth'), buffer));
    await new Promise((resolve) => setImmediate(resolve));
    expect(served).toEqual([]);
    expect(budget.tryTake(1 * MIB)).toBeUndefined(); // no extra buffer while an upload waits
    budget.give(first);
    const reused = await third;
    // A returned part buffer is reused rather than allocated again. (Compared by identity, never handed to expect:
    // printing a 4 MiB buffer takes a minute.)
    expect(reused === first).toBe(true);
    const fifth = await fourth;
    expect(served).toEqual(['third', 'fourth']);
    expect(budget.peakBytesHeld).toBeLessThanOrEqual(10 * MIB);
    for (const buffer of [reused, second, small, fifth]) budget.give(buffer);
    expect(budget.bytesHeld).toBe(0);
    expect((await budget.take(4 * MIB)) === first).toBe(false); // dropped once no upload held any
    expect(budget.overrunCount).toBe(0);
  });

  it('grants a first buffer past the limit once its wait runs out, so a copy keeps moving (and heartbeating)', async () => {
    const budget = new TransferBudget(4 * MIB, 50);
    const held = await budget.take(4 * MIB);
    const started = Date.now();
    const late = await budget.take(1 * MIB);
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
    expect(budget.overrunCount).toBe(1);
    expect(budget.bytesHeld).toBe(5 * MIB);
    budget.give(held);
    budget.give(late);
    expect(budget.bytesHeld).toBe(0);
  });
});
