// Headless Chromium for browser tests: Debian's package, installed by scripts/install-chromium.sh when missing.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../src/config/local-stack';

/** The path of a Chromium binary, installing the package first if none is on PATH (minutes on a cold machine). */
export function chromiumPath(): string {
  const out = execFileSync('bash', [join(repoRoot, 'scripts', 'install-chromium.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 });
  const path = out.trim().split('\n').pop();
  if (!path) throw new Error('scripts/install-chromium.sh printed no path');
  return path;
}
