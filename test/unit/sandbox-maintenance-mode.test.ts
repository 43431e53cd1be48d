// The sandbox's maintenance flag on its own: persistence in stateDir, refusal of a corrupt file, the write drain.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAINTENANCE_FILE, MaintenanceMode, MaintenanceStateError } from '../../sandbox/maintenance-mode';

const dirs: string[] = [];
const stateDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-maintenance-'));
  dirs.push(dir);
  return join(dir, 'state');
};

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('MaintenanceMode', () => {
  it('starts disabled without a file, and a new instance reads back what the previous one set', async () => {
    const dir = stateDir();
    const first = await MaintenanceMode.load(dir);
    expect(first.state).toEqual({ enabled: false, reason: null, since: null });

    const at = new Date('2026-01-02T03:04:05.000Z');
    const { state, drained } = await first.set(true, 'nightly backup', at, 1_000);
    expect(drained).toBe(true);
    expect(state).toEqual({ enabled: true, reason: 'nightly backup', since: at.toISOString() });
    expect(JSON.parse(readFileSync(join(dir, MAINTENANCE_FILE), 'utf8'))).toEqual(state);

    const second = await MaintenanceMode.load(dir);
    expect(second.state).toEqual(state);
    expect(second.tryEnterWrite()).toBe(false);
  });

  it('refuses to start from a corrupt state file rather than guess', async () => {
    const dir = stateDir();
    await (await MaintenanceMode.load(dir)).set(false, null, new Date(), 1_000);
    writeFileSync(join(dir, MAINTENANCE_FILE), '{"enabled": "yes"');
    await expect(MaintenanceMode.load(dir)).rejects.toBeInstanceOf(MaintenanceStateError);
  });

  it('enabling waits for writes already admitted, and refuses new ones at once', async () => {
    const mode = await MaintenanceMode.load(stateDir());
    expect(mode.tryEnterWrite()).toBe(true);
    expect(mode.tryEnterWrite()).toBe(true);

    let resolved = false;
    const enabling = mode.set(true, 'dump', new Date(), 5_000).then((result) => {
      resolved = true;
      return result;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(mode.enabled).toBe(true);
    expect(mode.tryEnterWrite()).toBe(false);
    expect(resolved).toBe(false);

    mode.leaveWrite();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(resolved).toBe(false);
    mode.leaveWrite();
    expect((await enabling).drained).toBe(true);
  });

  it('reports a drain that did not finish in time, leaving the flag on', async () => {
    const mode = await MaintenanceMode.load(stateDir());
    expect(mode.tryEnterWrite()).toBe(true);
    const { state, drained } = await mode.set(true, 'dump', new Date(), 30);
    expect(drained).toBe(false);
    expect(state.enabled).toBe(true);
    mode.leaveWrite();
    expect((await mode.set(true, 'dump', new Date(), 30)).drained).toBe(true);
  });
});
