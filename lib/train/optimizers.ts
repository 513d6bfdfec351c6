// Adam and SGD with momentum whose whole state is explicit and serialisable. tfjs's own optimizers create
// their slot variables lazily and hide the iteration count inside; restoring them into a fresh optimizer does
// not reliably reproduce the same arithmetic, so exact resume needs optimizers we own: slots are created
// eagerly (zeros), and getState/setState copy every float bit-for-bit.
import * as tf from '@tensorflow/tfjs-core';
import type { OptimizerName } from './hparams.js';

export const ADAM_BETA1 = 0.9;
export const ADAM_BETA2 = 0.999;
export const ADAM_EPSILON = 1e-7;

/** A weight the optimizer updates: its stable name (layer/weight) and the variable holding it. */
export interface TrainableWeight {
  name: string;
  variable: tf.Variable;
}

export interface OptimizerSlot {
  /** `<weight name>/<slot>` e.g. `enc1_conv1/kernel/m`. */
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface OptimizerState {
  kind: OptimizerName;
  /** Updates applied so far (Adam's t). */
  iteration: number;
  slots: OptimizerSlot[];
}

export interface OptimizerSettings {
  kind: OptimizerName;
  momentum: number;
  weightDecay: number;
}

export class TrainOptimizer {
  private iteration = 0;
  /** Per weight, its slots in a fixed order: adam [m, v]; sgd [velocity] (none when momentum is 0). */
  private readonly slots: tf.Variable[][];
  private readonly slotNames: string[];

  constructor(
    readonly settings: OptimizerSettings,
    private readonly weights: readonly TrainableWeight[],
  ) {
    this.slotNames = settings.kind === 'adam' ? ['m', 'v'] : settings.momentum > 0 ? ['velocity'] : [];
    this.slots = weights.map((weight) =>
      this.slotNames.map(() => tf.variable(tf.zerosLike(weight.variable), false)),
    );
  }

  get iterations(): number {
    return this.iteration;
  }

  /** One update with `gradients[i]` for `weights[i]` at learning rate `lr`. Does not dispose the gradients. */
  apply(gradients: readonly tf.Tensor[], lr: number): void {
    if (gradients.length !== this.weights.length) {
      throw new Error(`optimizer got ${gradients.length} gradients for ${this.weights.length} weights`);
    }
    this.iteration += 1;
    const { kind, momentum, weightDecay } = this.settings;
    // Bias correction in float64 on the host, then one float32 scalar: the same bits every run.
    const adamStep =
      (lr * Math.sqrt(1 - Math.pow(ADAM_BETA2, this.iteration))) / (1 - Math.pow(ADAM_BETA1, this.iteration));
    tf.tidy(() => {
      this.weights.forEach((weight, index) => {
        const w = weight.variable;
        let g = gradients[index]!;
        if (weightDecay > 0) g = tf.add(g, tf.mul(w, weightDecay));
        const slots = this.slots[index]!;
        if (kind === 'adam') {
          const [m, v] = slots as [tf.Variable, tf.Variable];
          const mNew = tf.add(tf.mul(m, ADAM_BETA1), tf.mul(g, 1 - ADAM_BETA1));
          const vNew = tf.add(tf.mul(v, ADAM_BETA2), tf.mul(tf.square(g), 1 - ADAM_BETA2));
          m.assign(mNew);
          v.assign(vNew);
          w.assign(tf.sub(w, tf.div(tf.mul(mNew, adamStep), tf.add(tf.sqrt(vNew), ADAM_EPSILON))));
        } else if (slots.length === 1) {
          const velocity = slots[0]!;
          const vNew = tf.add(tf.mul(velocity, momentum), g);
          velocity.assign(vNew);
          w.assign(tf.sub(w, tf.mul(vNew, lr)));
        } else {
          w.assign(tf.sub(w, tf.mul(g, lr)));
        }
      });
    });
  }

  async getState(): Promise<OptimizerState> {
    const slots: OptimizerSlot[] = [];
    for (let i = 0; i < this.weights.length; i++) {
      for (let s = 0; s < this.slotNames.length; s++) {
        const variable = this.slots[i]![s]!;
        slots.push({
          name: `${this.weights[i]!.name}/${this.slotNames[s]}`,
          shape: [...variable.shape],
          values: (await variable.data()) as Float32Array,
        });
      }
    }
    return { kind: this.settings.kind, iteration: this.iteration, slots };
  }

  /** Restores a state from getState; refuses one written for another optimizer or other weights. */
  setState(state: OptimizerState): void {
    if (state.kind !== this.settings.kind) {
      throw new Error(`optimizer state is for ${state.kind} but training uses ${this.settings.kind}`);
    }
    const expected = this.weights.length * this.slotNames.length;
    if (state.slots.length !== expected) {
      throw new Error(`optimizer state has ${state.slots.length} slots, expected ${expected}`);
    }
    let index = 0;
    for (let i = 0; i < this.weights.length; i++) {
      for (let s = 0; s < this.slotNames.length; s++) {
        const slot = state.slots[index++]!;
        const variable = this.slots[i]![s]!;
        const name = `${this.weights[i]!.name}/${this.slotNames[s]}`;
        if (slot.name !== name || slot.shape.join('x') !== variable.shape.join('x')) {
          throw new Error(
            `optimizer slot ${index - 1} is ${slot.name} [${slot.shape}] but this model needs ${name} [${variable.shape}]`,
          );
        }
        variable.assign(tf.tensor(slot.values, slot.shape, 'float32'));
      }
    }
    this.iteration = state.iteration;
  }

  dispose(): void {
    for (const slots of this.slots) for (const slot of slots) slot.dispose();
  }
}
