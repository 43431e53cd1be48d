// When the command runs the compiled build: dist/ finished and newer than every source, or an installation without sources.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildState } from '../../bin/build-freshness.mjs';

const roots: string[] = [];
afterEach(() => roots.splice(0).forEach((root) => rmSync(root, { recursive: true, force: true })));

/** A checkout: a source file at `sourceAge` seconds ago and, unless null, a build stamp at `buildAge`. */
function checkout(sourceAge: number, buildAge: number | null, withSources = true): string {
  const root = mkdtempSync(join(tmpdir(), 'vaultpam-build-state-'));
  roots.push(root);
  const at = (path: string, age: number) => utimesSync(path, new Date(Date.now() - age * 1000), new Date(Date.now() - age * 1000));
  writeFileSync(join(root, 'package.json'), '{}');
  at(join(root, 'package.json'), 3600);
  if (withSources) {
    mkdirSync(join(root, 'workflows', 'nested'), { recursive: true });
    mkdirSync(join(root, 'src'));
    writeFileSync(join(root, 'workflows', 'nested', 'step.ts'), 'export {};');
    at(join(root, 'workflows', 'nested', 'step.ts'), sourceAge);
  }
  if (buildAge !== null) {
    mkdirSync(join(root, 'dist'));
    writeFileSync(join(root, 'dist', 'build-info.json'), '{}');
    at(join(root, 'dist', 'build-info.json'), buildAge);
  }
  return root;
}

describe('buildState', () => {
  it('is missing without a finished build, stale when a source (however deep) changed after it, current otherwise', () => {
    expect(buildState(checkout(60, null))).toBe('missing');
    expect(buildState(checkout(10, 60))).toBe('stale');
    expect(buildState(checkout(60, 10))).toBe('current');
  });

  it('is current for an installation of the build alone (the image has no sources to compare with)', () => {
    expect(buildState(checkout(0, 60, false))).toBe('current');
  });
});
