// The progress line: iteration, the losses, iterations per second and the time left.
//
// On a terminal it is one line redrawn in place (at most 5 times a second), with messages
// (snapshots, evaluations) printed above it; in a log file or CI it is a plain line every
// `intervalS` seconds, so logs stay readable.

export interface ProgressStream {
  write(s: string): boolean;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** `loss_seg2` -> `seg2`, `loss_D1` -> `D1`: short enough for six losses on one line. */
const short = (name: string) => name.replace(/^loss_/, "");

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function formatLoss(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toFixed(4);
}

export function progressLine(o: {
  readonly title: string;
  readonly done: number;
  readonly total: number;
  readonly losses: Readonly<Record<string, number>>;
  readonly itsPerS: number;
  readonly width: number;
}): string {
  const frac = o.total > 0 ? Math.min(1, o.done / o.total) : 1;
  const barWidth = 20;
  const filled = Math.round(frac * barWidth);
  const bar = `[${"#".repeat(filled)}${".".repeat(barWidth - filled)}]`;
  const losses = Object.entries(o.losses)
    .map(([k, v]) => `${short(k)} ${formatLoss(v)}`)
    .join(" ");
  const eta = o.itsPerS > 0 ? formatDuration((o.total - o.done) / o.itsPerS) : "--";
  const line = `${o.title} ${bar} ${o.done}/${o.total} | ${losses} | ${o.itsPerS.toFixed(2)} it/s | ETA ${eta}`;
  return line.length > o.width ? line.slice(0, o.width - 1) : line;
}

export class Progress {
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly title: string,
    private readonly total: number,
    private readonly stream: ProgressStream = process.stderr,
    private readonly intervalS = 15,
  ) {}

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  update(done: number, losses: Readonly<Record<string, number>>, itsPerS: number, force = false): void {
    const now = performance.now();
    const interval = this.tty ? 200 : this.intervalS * 1000;
    if (!force && this.drawn && now - this.lastDraw < interval) return;
    this.lastDraw = now;
    const line = progressLine({ title: this.title, done, total: this.total, losses, itsPerS, width: this.tty ? (this.stream.columns ?? 160) : 400 });
    if (this.tty) this.stream.write(`\r\x1b[2K${line}`);
    else this.stream.write(`${line}\n`);
    this.drawn = true;
  }

  /** A line above the bar (snapshots, evaluations, warnings). */
  message(text: string): void {
    if (this.tty && this.drawn) this.stream.write("\r\x1b[2K");
    this.stream.write(`${text}\n`);
    this.drawn = false;
  }

  finish(): void {
    if (this.tty && this.drawn) this.stream.write("\n");
    this.drawn = false;
  }
}
