// Shared by the dataset-layout tests: the Dice the tests recompute on their own, independent of lib/metrics.

/** Dice of one stored label value between a prediction and a truth of the same length (both empty: 1). */
export function diceOfValue(prediction: ArrayLike<number>, truth: ArrayLike<number>, value: number): number {
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < prediction.length; i++) {
    const p = prediction[i] === value, t = truth[i] === value;
    if (p && t) tp++;
    else if (p) fp++;
    else if (t) fn++;
  }
  return tp + fp + fn === 0 ? 1 : (2 * tp) / (2 * tp + fp + fn);
}
