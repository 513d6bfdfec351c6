// Learning-rate schedules. constant, step and cosine are pure functions of the position in training; plateau
// also depends on the metrics seen so far, so its state (current lr, best value, epochs without improvement)
// is part of every checkpoint.
import { resolveMode, type ScheduleConfig } from './hparams.js';

export interface ScheduleState {
  /** plateau: the learning rate now in force. */
  lr: number;
  /** plateau: the best value of the watched metric so far (null before the first). */
  best: number | null;
  /** plateau: epochs since the last improvement. */
  badEpochs: number;
  /** plateau: reductions made so far. */
  reductions: number;
}

export class LrSchedule {
  private state: ScheduleState;

  constructor(
    readonly config: ScheduleConfig,
    readonly baseLr: number,
    readonly epochs: number,
    readonly stepsPerEpoch: number,
  ) {
    this.state = { lr: baseLr, best: null, badEpochs: 0, reductions: 0 };
  }

  /** The learning rate of the step at `stepInEpoch` (0-based) of `epoch` (0-based). */
  lrAt(epoch: number, stepInEpoch: number): number {
    const { type } = this.config;
    switch (type) {
      case 'constant':
        return this.baseLr;
      case 'step':
        return this.baseLr * Math.pow(this.config.gamma, Math.floor(epoch / this.config.step_epochs));
      case 'cosine': {
        const total = Math.max(1, this.epochs * this.stepsPerEpoch);
        const progress = Math.min(1, (epoch * this.stepsPerEpoch + stepInEpoch) / total);
        const minLr = Math.min(this.config.min_lr, this.baseLr);
        return minLr + 0.5 * (this.baseLr - minLr) * (1 + Math.cos(Math.PI * progress));
      }
      case 'plateau':
        return this.state.lr;
    }
  }

  /**
   * After each validation: plateau reduces the rate when its metric has not improved for `patience`
   * validations. Returns true when it reduced. `metrics` lacking the watched name is an error (a typo).
   */
  onValidation(metrics: Record<string, number>): boolean {
    if (this.config.type !== 'plateau') return false;
    const name = this.config.metric;
    const value = metrics[name];
    if (value === undefined) {
      throw new Error(`schedule.metric ${name} is not an epoch metric; available: ${Object.keys(metrics).join(', ')}`);
    }
    const mode = resolveMode(name, this.config.mode);
    const improved = this.state.best === null || (mode === 'min' ? value < this.state.best : value > this.state.best);
    if (improved) {
      this.state.best = value;
      this.state.badEpochs = 0;
      return false;
    }
    this.state.badEpochs += 1;
    if (this.state.badEpochs < this.config.patience) return false;
    const reduced = Math.max(this.config.min_lr, this.state.lr * this.config.factor);
    this.state.badEpochs = 0;
    if (reduced >= this.state.lr) return false;
    this.state.lr = reduced;
    this.state.reductions += 1;
    return true;
  }

  getState(): ScheduleState {
    return { ...this.state };
  }

  setState(state: ScheduleState): void {
    this.state = { ...state };
  }
}
