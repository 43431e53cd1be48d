// The progress display: a live bar with objects, bytes, rate and ETA on a terminal; a plain line at an interval elsewhere.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgressDisplay, formatDuration, type ProgressStream } from '../../src/cli/progress-display';

/** A stream that keeps what is written to it, a terminal or not. */
function capture(isTTY: boolean): { stream: ProgressStream; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  }) as Writable & { isTTY?: boolean; columns?: number };
  if (isTTY) {
    stream.isTTY = true;
    stream.columns = 160;
  }
  return { stream, text: () => chunks.join('') };
}

const MiB = 1024 * 1024;

describe('progress display', () => {
  it('off a terminal, prints one plain line per interval with objects, bytes, rate and ETA, and the last figures at the end', () => {
    const out = capture(false);
    let t = 0;
    const display = createProgressDisplay({ label: 'backup', stream: out.stream, plainIntervalMs: 5000, now: () => t });
    // 200 objects of 10 MiB in all; 10 objects (0.5 MiB) a second.
    for (let second = 0; second <= 7; second++) {
      t = second * 1000;
      display.update({ step: 'sync-recordings', objects: second * 10, objectsTotal: 200, bytes: second * 0.5 * MiB, bytesTotal: 10 * MiB });
    }
    display.stop();
    const lines = out.text().split('\n').filter(Boolean);
    // t=0 and t=5 s by the interval, t=7 s held back until the end.
    expect(lines).toEqual([
      'backup: sync-recordings · 0/200 objects · 0 B/10.0 MiB',
      'backup: sync-recordings · 50/200 objects · 2.5 MiB/10.0 MiB · 512.0 KiB/s · ETA 15 s',
      'backup: sync-recordings · 70/200 objects · 3.5 MiB/10.0 MiB · 512.0 KiB/s · ETA 13 s',
    ]);
    expect(out.text()).not.toContain('\x1b');
  });

  it('off a terminal, measures the rate anew when the step changes, and shows a retry', () => {
    const out = capture(false);
    let t = 0;
    const display = createProgressDisplay({ label: 'verify', stream: out.stream, plainIntervalMs: 1000, now: () => t });
    display.update({ step: 'dump', bytes: 8 * MiB });
    t = 2000;
    display.update({ step: 'verify', objects: 30, attempt: 2 });
    t = 4000;
    display.update({ step: 'verify', objects: 70, attempt: 2 });
    display.stop();
    expect(out.text().split('\n').filter(Boolean)).toEqual([
      'verify: dump · 8.0 MiB',
      'verify: verify · 30 objects · attempt 2',
      'verify: verify · 70 objects · 20.0 objects/s · attempt 2',
    ]);
  });

  it('on a terminal, draws a bar redrawn in place with the same figures, and clears it at the end', () => {
    const out = capture(true);
    let t = 0;
    const display = createProgressDisplay({ label: 'backup', stream: out.stream, now: () => t });
    display.update({ step: 'sync-recordings', objects: 0, objectsTotal: 100, bytes: 0, bytesTotal: 4 * MiB });
    t = 4000;
    display.update({ step: 'sync-recordings', objects: 50, objectsTotal: 100, bytes: 2 * MiB, bytesTotal: 4 * MiB });
    display.stop();
    const text = out.text();
    // Half done: half the bar full (shades_classic: █ done, ░ to do), the figures beside it.
    expect(text).toContain(`backup ${'█'.repeat(12)}${'░'.repeat(12)} sync-recordings · 50/100 objects · 2.0 MiB/4.0 MiB · 512.0 KiB/s · ETA 4 s`);
    // Drawn in place (cursor moves, line cleared), the cursor hidden while it runs and shown again after.
    expect(text).toContain('\x1b[?25l');
    expect(text).toContain('\x1b[?25h');
    // Cleared at the end, so the result prints on a clean line.
    expect(text.endsWith('\x1b[2K')).toBe(true);
    expect(text).not.toContain('\n');
  });

  it('writes durations a person reads at a glance', () => {
    expect(formatDuration(42.4)).toBe('42 s');
    expect(formatDuration(125)).toBe('2 min 05 s');
    expect(formatDuration(3 * 3600 + 7 * 60)).toBe('3 h 07 min');
  });
});
