/**
 * Progress rendering. The formatting is pure (tested with fixed numbers); the
 * ProgressLine class only decides *when* and *how* to write to stderr, because a
 * TTY can redraw one line with \r while a log file or CI pipe would fill up
 * with thousands of redraws.
 */

export interface JobCounts {
  total: number;
  pending: number;
  done: number;
  failed: number;
  skipped: number;
  cached: number;
}

/** "6s", "1m05s", "2h03m"; "?" when there is nothing to estimate from. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function formatRate(perSecond: number | null): string {
  if (perSecond === null || !Number.isFinite(perSecond) || perSecond <= 0) return "-- img/s";
  return `${perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toFixed(1)} img/s`;
}

export function bar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = Math.floor(f * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** Items that will not change any more: the numerator of the bar and the basis of the ETA. */
export const finishedCount = (c: JobCounts): number => c.done + c.failed + c.skipped;

export interface ProgressSnapshot {
  state: string;
  counts: JobCounts;
  /** False while the server is still listing a prefix: total may grow, so no ETA yet. */
  totalFinal: boolean;
  /** Items per second, or null when unknown. */
  rate: number | null;
}

/**
 * `[#####.....] 123/200 done 3 failed 40 cached | 12.3 img/s | ETA 6s`
 * "123/200 done" counts every finished item (done, failed or skipped), so the
 * bar reaches the end even when some items fail; the failures are listed next to it.
 */
export function formatProgress(p: ProgressSnapshot, barWidth = 20): string {
  const finished = finishedCount(p.counts);
  const total = p.counts.total;
  const parts = [
    `${bar(total > 0 ? finished / total : 0, barWidth)} ${finished}/${total}${p.totalFinal ? "" : "+"} done`,
    `${p.counts.failed} failed`,
    `${p.counts.cached} cached`,
  ];
  if (p.counts.skipped > 0) parts.push(`${p.counts.skipped} skipped`);
  let eta: string;
  if (!p.totalFinal) eta = "ETA ? (listing)";
  else if (finished >= total) eta = "ETA 0s";
  else eta = `ETA ${formatDuration(p.rate && p.rate > 0 ? (total - finished) / p.rate : null)}`;
  const state = p.state === "running" ? "" : ` | ${p.state}`;
  return `${parts.join(" ")} | ${formatRate(p.rate)} | ${eta}${state}`;
}

/**
 * Rate over a sliding window of (time, finished) samples. A window, not the
 * average since start, so the ETA reacts when the queue warms up or a run of
 * cache hits ends.
 */
export class RateMeter {
  private samples: Array<{ t: number; n: number }> = [];
  constructor(private readonly windowMs = 10_000) {}

  add(tMs: number, finished: number): void {
    this.samples.push({ t: tMs, n: finished });
    // Keep one sample older than the window so the span always covers ~windowMs.
    while (this.samples.length > 2 && (this.samples[1] as { t: number }).t <= tMs - this.windowMs) {
      this.samples.shift();
    }
  }

  /** Items per second, or null until two samples at least 0.5 s apart exist. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t - first.t < 500) return null;
    return Math.max(0, (last.n - first.n) / ((last.t - first.t) / 1000));
  }
}

export interface Output {
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  write(s: string): unknown;
}

/** Writes a status line: redrawn in place on a TTY, throttled to one line per interval otherwise. */
export class ProgressLine {
  private lastPrinted = Number.NEGATIVE_INFINITY;
  private drawn = false;
  private lastText = "";
  private lastPrintedText = "";

  constructor(
    private readonly out: Output,
    private readonly nonTtyIntervalMs = 2000,
    private readonly now: () => number = Date.now,
  ) {}

  update(text: string, force = false): void {
    this.lastText = text;
    if (this.out.isTTY) {
      // Truncate to the terminal width: a wrapped line cannot be redrawn with \r.
      const cols = this.out.columns ?? 0;
      const shown = cols > 1 && text.length >= cols ? `${text.slice(0, cols - 2)}…` : text;
      this.out.write(`\r\x1b[2K${shown}`);
      this.drawn = true;
      return;
    }
    const t = this.now();
    if (force || t - this.lastPrinted >= this.nonTtyIntervalMs) {
      this.out.write(`${text}\n`);
      this.lastPrinted = t;
      this.lastPrintedText = text;
    }
  }

  /** Ends the line so later output starts on a fresh one; prints the last state once more in non-TTY mode. */
  finish(): void {
    if (this.out.isTTY) {
      if (this.drawn) this.out.write("\n");
    } else if (this.lastText && this.lastText !== this.lastPrintedText) {
      this.update(this.lastText, true);
    }
    this.drawn = false;
    this.lastText = "";
    this.lastPrintedText = "";
    this.lastPrinted = Number.NEGATIVE_INFINITY;
  }

  /** Clears a TTY line before unrelated output (a warning) so the two do not overlap. */
  interrupt(): void {
    if (this.out.isTTY && this.drawn) {
      this.out.write("\r\x1b[2K");
      this.drawn = false;
    }
  }

  /** Redraws after interrupt(). */
  redraw(): void {
    if (this.out.isTTY && this.lastText) this.update(this.lastText);
  }
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

/** `upload [####......] 50/200 files | 3.2/12.8 MB | 12.3 files/s | ETA 6s` */
export function formatUploadProgress(
  p: { files: number; totalFiles: number; bytes: number; totalBytes: number; failed: number; rate: number | null },
  barWidth = 20,
): string {
  const failed = p.failed > 0 ? ` (${p.failed} refused)` : "";
  const rate =
    p.rate === null || !Number.isFinite(p.rate) || p.rate <= 0 ? "-- files/s" : `${p.rate.toFixed(1)} files/s`;
  const left = p.totalFiles - p.files;
  const eta = left <= 0 ? "0s" : formatDuration(p.rate && p.rate > 0 ? left / p.rate : null);
  return (
    `upload ${bar(p.totalFiles > 0 ? p.files / p.totalFiles : 0, barWidth)} ${p.files}/${p.totalFiles} files${failed}` +
    ` | ${mb(p.bytes)}/${mb(p.totalBytes)} MB | ${rate} | ETA ${eta}`
  );
}
