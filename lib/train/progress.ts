// Training progress: a cli-progress bar (loss, images/s, ETA) on stderr when it is a terminal; otherwise a
// plain line through ctx.print at most every ~10 s and at each epoch end, so logs stay readable.
import cliProgress from 'cli-progress';

export interface ProgressStep {
  epoch: number;
  epochs: number;
  globalStep: number;
  totalSteps: number;
  loss: number;
  imagesPerSecond: number;
}

export interface ProgressReporter {
  step(info: ProgressStep): void;
  epoch(line: string): void;
  stop(): void;
}

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

class BarReporter implements ProgressReporter {
  private readonly bar: cliProgress.SingleBar;
  private started = false;

  constructor(private readonly print: (line: string) => void) {
    this.bar = new cliProgress.SingleBar(
      {
        format: 'train |{bar}| {value}/{total} steps | epoch {epoch}/{epochs} | loss {loss} | {speed} img/s | ETA {eta_formatted}',
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  step(info: ProgressStep): void {
    const payload = {
      epoch: info.epoch,
      epochs: info.epochs,
      loss: info.loss.toFixed(4),
      speed: info.imagesPerSecond.toFixed(1),
    };
    if (!this.started) {
      this.bar.start(info.totalSteps, info.globalStep, payload);
      this.started = true;
    } else {
      this.bar.update(info.globalStep, payload);
    }
  }

  epoch(line: string): void {
    // Print above the bar: stop it, print, and let the next step redraw it.
    if (this.started) {
      this.bar.stop();
      this.started = false;
    }
    this.print(line);
  }

  stop(): void {
    if (this.started) this.bar.stop();
    this.started = false;
  }
}

class LineReporter implements ProgressReporter {
  private lastPrint = Date.now();
  /** Where this session's rate measurement starts (resumed runs begin mid-way). */
  private first: { step: number; at: number } | null = null;

  constructor(
    private readonly print: (line: string) => void,
    private readonly everyMs: number,
  ) {}

  step(info: ProgressStep): void {
    const now = Date.now();
    if (this.first === null) this.first = { step: info.globalStep, at: now };
    if (now - this.lastPrint < this.everyMs) return;
    this.lastPrint = now;
    const stepsPerSecond = (info.globalStep - this.first.step) / Math.max(1e-3, (now - this.first.at) / 1000);
    const eta = stepsPerSecond > 0 ? (info.totalSteps - info.globalStep) / stepsPerSecond : Infinity;
    this.print(
      `epoch ${info.epoch}/${info.epochs} step ${info.globalStep}/${info.totalSteps} loss ${info.loss.toFixed(4)} ` +
        `${info.imagesPerSecond.toFixed(1)} img/s ETA ${formatSeconds(eta)}`,
    );
  }

  epoch(line: string): void {
    this.lastPrint = Date.now();
    this.print(line);
  }

  stop(): void {}
}

export function createProgress(interactive: boolean, print: (line: string) => void, everyMs = 10_000): ProgressReporter {
  return interactive ? new BarReporter(print) : new LineReporter(print, everyMs);
}

/** Progress of a data stage over a known number of items (records, samples): count, rate and ETA. */
export interface ItemProgress {
  advance(items: number): void;
  stop(): void;
}

/**
 * The same two faces as training's progress: a bar on a terminal, otherwise a line at most every `everyMs`
 * (and one at the end), e.g. `tfrecord.read 1200/5088 records 410.2/s ETA 9s`.
 */
export function createItemProgress(
  label: string,
  total: number,
  unit: string,
  interactive: boolean,
  print: (line: string) => void,
  everyMs = 10_000,
): ItemProgress {
  const start = Date.now();
  let done = 0;
  const rate = () => done / Math.max(1e-3, (Date.now() - start) / 1000);
  if (interactive) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} |{bar}| {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: '0' });
    return {
      advance(items) {
        done += items;
        bar.update(done, { rate: rate().toFixed(1) });
      },
      stop() {
        bar.stop();
      },
    };
  }
  let lastPrint = start;
  const line = () => `${label} ${done}/${total} ${unit} ${rate().toFixed(1)}/s ETA ${formatSeconds((total - done) / Math.max(rate(), 1e-9))}`;
  return {
    advance(items) {
      done += items;
      const now = Date.now();
      if (now - lastPrint < everyMs) return;
      lastPrint = now;
      print(line());
    },
    stop() {
      if (Date.now() - start >= everyMs) print(line());
    },
  };
}
