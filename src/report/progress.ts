// A small terminal progress bar (one line, redrawn in place on a TTY; sparse lines otherwise).
export interface ProgressOptions {
  total: number;
  label?: string;
  /** Stream to draw on; stderr keeps stdout clean for --json output. */
  stream?: NodeJS.WriteStream;
  width?: number;
  /** When the work began (ms since epoch), if before the bar was made: ETA then counts the first step too. */
  startedAt?: number;
}

export class ProgressBar {
  private readonly startedAt: number;
  private lastDrawAt = 0;
  private lastLoggedPercent = -1;
  private done = 0;
  private readonly stream: NodeJS.WriteStream;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.startedAt = options.startedAt ?? Date.now();
  }

  /** Advance by `n` steps; `suffix` is appended (for example running loss and accuracy). */
  tick(n = 1, suffix = ''): void {
    this.update(this.done + n, suffix);
  }

  update(done: number, suffix = ''): void {
    this.done = done;
    const now = Date.now();
    const finished = done >= this.options.total;
    if (this.stream.isTTY) {
      if (!finished && now - this.lastDrawAt < 100) return;
      this.lastDrawAt = now;
      this.stream.write(`\r${this.render(suffix)}\x1b[K`);
    } else {
      // Without a TTY print at most every 10% so logs stay readable.
      const percent = this.options.total > 0 ? Math.floor((100 * done) / this.options.total / 10) * 10 : 100;
      if (percent === this.lastLoggedPercent && !finished) return;
      this.lastLoggedPercent = percent;
      this.stream.write(`${this.render(suffix)}\n`);
    }
  }

  /** Finish the line (on a TTY) so the next output starts on a fresh line. */
  finish(suffix = ''): void {
    if (this.done < this.options.total || this.stream.isTTY) {
      this.done = this.options.total;
      if (this.stream.isTTY) this.stream.write(`\r${this.render(suffix)}\x1b[K\n`);
      else if (this.lastLoggedPercent !== 100) this.stream.write(`${this.render(suffix)}\n`);
    }
  }

  render(suffix = ''): string {
    const { total, label = '' } = this.options;
    const width = this.options.width ?? 30;
    const fraction = total > 0 ? Math.min(1, this.done / total) : 1;
    const filled = Math.round(fraction * width);
    const bar =
      '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? (fraction < 1 ? '>' : '=') : '') + '.'.repeat(width - filled);
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const eta = this.done > 0 && fraction < 1 ? (elapsed / this.done) * (total - this.done) : 0;
    const time = fraction < 1 ? `ETA ${formatSeconds(eta)}` : `${formatSeconds(elapsed)}`;
    const width_ = String(total).length;
    return `${label ? `${label} ` : ''}${String(this.done).padStart(width_)}/${total} [${bar}] - ${time}${suffix ? ` - ${suffix}` : ''}`;
  }
}

/** "4.2s", "42s", "2m05s", "1h03m". Rounded once, to whole seconds from 10 s on, so 179.6 s is 3m00s, not 2m60s. */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 9.95) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  const m = Math.floor(whole / 60);
  if (m < 60) return `${m}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** "about 1h04m left" from the seconds an epoch took so far and the epochs still to run. */
export function formatTimeLeft(secondsPerEpoch: number | undefined, epochsLeft: number): string {
  if (epochsLeft <= 0) return 'no epoch left to train';
  if (secondsPerEpoch === undefined) return `${epochsLeft} epochs left (the time they take is known after the first)`;
  return `about ${formatSeconds(secondsPerEpoch * epochsLeft)} left (${epochsLeft} epochs)`;
}
