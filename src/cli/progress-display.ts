// How a waiting command shows a workflow's progress: a live bar on a terminal, a plain line every few seconds elsewhere.
//
// The bar is drawn by cli-progress (maintained, no dependencies of its own): it owns the terminal side, that is
// redrawing in place, throttling redraws, clipping to the terminal width and hiding the cursor. Its own ETA and
// rate are not used: they follow the bar's value, which here is bytes for one step and objects for another, so
// the figures are computed below from the workflow's counters and handed to it as text. Where the output is no
// terminal (CI logs, pipes) cli-progress prints nothing, and this module writes one plain line at an interval.
import cliProgress from 'cli-progress';
import { formatBytes } from '../operations/byte-size';
import type { ProgressFigures } from '../operations/workflow-progress';

export type { ProgressFigures };

/** Where the display writes: stderr in the command, any stream in tests. */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface ProgressDisplayOptions {
  /** Leads every line, e.g. "backup 20261127T020000Z-1a2b3c". */
  label: string;
  stream: ProgressStream;
  /**
   * Off a terminal, the least time between two plain lines.
   * @default 5000
   */
  plainIntervalMs?: number;
  /**
   * The clock (tests pass their own).
   * @default Date.now
   */
  now?: () => number;
}

export interface ProgressDisplay {
  update(figures: ProgressFigures): void;
  /** Ends the display: the bar is cleared, and off a terminal the last figures are printed if not yet shown. */
  stop(): void;
}

/** The window the rate is measured over: long enough to smooth bursts, short enough to follow a change of step. */
const RATE_WINDOW_MS = 10_000;

interface Sample {
  at: number;
  step: string;
  objects: number;
  bytes: number;
}

/** Bytes (else objects) per second over the last RATE_WINDOW_MS of the current step, and the time left at that rate. */
export class RateMeter {
  private samples: Sample[] = [];

  constructor(private readonly now: () => number) {}

  add(f: ProgressFigures): { bytesPerSecond?: number; objectsPerSecond?: number; etaSeconds?: number } {
    const at = this.now();
    // Counters start again with each step: a rate across two steps means nothing.
    if (this.samples.length && this.samples[this.samples.length - 1]!.step !== f.step) this.samples = [];
    this.samples.push({ at, step: f.step, objects: f.objects ?? 0, bytes: f.bytes ?? 0 });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0]!;
    const seconds = (at - first.at) / 1000;
    if (seconds <= 0) return {};
    const out: { bytesPerSecond?: number; objectsPerSecond?: number; etaSeconds?: number } = {};
    if (f.bytes !== undefined) out.bytesPerSecond = Math.max(0, (f.bytes - first.bytes) / seconds);
    if (f.objects !== undefined) out.objectsPerSecond = Math.max(0, (f.objects - first.objects) / seconds);
    if (f.bytesTotal !== undefined && f.bytes !== undefined && out.bytesPerSecond) out.etaSeconds = Math.max(0, (f.bytesTotal - f.bytes) / out.bytesPerSecond);
    else if (f.objectsTotal !== undefined && f.objects !== undefined && out.objectsPerSecond) out.etaSeconds = Math.max(0, (f.objectsTotal - f.objects) / out.objectsPerSecond);
    return out;
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** The figures as words, the same on a terminal and off it: "sync · 40/200 objects · 1.2 MiB/5.0 MiB · 300.0 KiB/s · ETA 12 s". */
export function formatFigures(f: ProgressFigures, rate: ReturnType<RateMeter['add']>): string {
  const parts = [f.step];
  if (f.objects !== undefined) parts.push(`${f.objects}${f.objectsTotal !== undefined ? `/${f.objectsTotal}` : ''} objects`);
  if (f.bytes !== undefined) parts.push(`${formatBytes(f.bytes)}${f.bytesTotal !== undefined ? `/${formatBytes(f.bytesTotal)}` : ''}`);
  if (rate.bytesPerSecond !== undefined && f.bytes !== undefined) parts.push(`${formatBytes(rate.bytesPerSecond)}/s`);
  else if (rate.objectsPerSecond !== undefined && f.objects !== undefined) parts.push(`${rate.objectsPerSecond.toFixed(1)} objects/s`);
  if (rate.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(rate.etaSeconds)}`);
  if (f.attempt !== undefined && f.attempt > 1) parts.push(`attempt ${f.attempt}`);
  return parts.join(' · ');
}

/** Share done, 0..1: by bytes when their total is known, else by objects; 0 when neither total is. */
function fractionDone(f: ProgressFigures): number {
  if (f.bytesTotal && f.bytes !== undefined) return Math.min(1, f.bytes / f.bytesTotal);
  if (f.objectsTotal && f.objects !== undefined) return Math.min(1, f.objects / f.objectsTotal);
  return 0;
}

const BAR_STEPS = 1000;

export function createProgressDisplay(options: ProgressDisplayOptions): ProgressDisplay {
  const now = options.now ?? Date.now;
  const meter = new RateMeter(now);
  const stream = options.stream;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: stream as NodeJS.WritableStream,
        format: (format, params, payload: { text?: string }) => `${options.label} ${cliProgress.Format.BarFormat(params.progress, format)} ${payload.text ?? ''}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        stopOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(BAR_STEPS, 0, { text: 'starting' });
    return {
      update(f) {
        bar.update(Math.round(fractionDone(f) * BAR_STEPS), { text: formatFigures(f, meter.add(f)) });
      },
      stop() {
        bar.stop();
      },
    };
  }
  const interval = options.plainIntervalMs ?? 5000;
  let lastPrintedAt: number | undefined;
  let lastPrinted = '';
  let pending = '';
  const print = (text: string) => {
    stream.write(`${options.label}: ${text}\n`);
    lastPrinted = text;
    lastPrintedAt = now();
  };
  return {
    update(f) {
      const text = formatFigures(f, meter.add(f));
      if (lastPrintedAt === undefined || now() - lastPrintedAt >= interval) {
        print(text);
        pending = '';
      } else pending = text;
    },
    stop() {
      // The figures the last interval held back: a short run still leaves its last progress in the log.
      if (pending && pending !== lastPrinted) print(pending);
      pending = '';
    },
  };
}
