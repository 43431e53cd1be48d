// Whether dist/ holds a build of the current sources: the command runs the build only then, else the TypeScript sources.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What the build is made from: a file here newer than the build's stamp makes it stale. */
export const BUILD_INPUT_DIRS = ['src', 'workflows', 'activities', 'sandbox'];
export const BUILD_INPUT_FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'scripts/build.mjs'];
/** Written last by scripts/build.mjs: its presence means the build finished, its mtime is the build's. */
export const BUILD_STAMP = join('dist', 'build-info.json');

function newerFileIn(dir, since) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (newerFileIn(path, since)) return true;
    } else if (statSync(path).mtimeMs > since) return true;
  }
  return false;
}

/**
 * 'current': dist/ was built after every source last changed, or there are no sources (an installed image);
 * 'missing': no finished build; 'stale': a source changed since the build.
 * @param {string} root the folder holding package.json
 * @returns {'current' | 'missing' | 'stale'}
 */
export function buildState(root) {
  const stamp = join(root, BUILD_STAMP);
  if (!existsSync(stamp)) return 'missing';
  // An installation of the build alone (the image) has nothing to compare with.
  if (!existsSync(join(root, 'src'))) return 'current';
  const since = statSync(stamp).mtimeMs;
  for (const dir of BUILD_INPUT_DIRS) {
    const path = join(root, dir);
    if (existsSync(path) && newerFileIn(path, since)) return 'stale';
  }
  for (const file of BUILD_INPUT_FILES) {
    const path = join(root, file);
    if (existsSync(path) && statSync(path).mtimeMs > since) return 'stale';
  }
  return 'current';
}
