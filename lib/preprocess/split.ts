// Train/validation split by group (Carvana car id, BraTS patient), never by item: all angles of one car
// (all slices of one patient) stay on one side. Deterministic under the seed and independent of input order.
import { Rng } from '../rng.js';

export interface GroupSplit {
  train: string[];
  val: string[];
}

/** split.json, as docs/contracts.md defines it. */
export interface SplitFile extends GroupSplit {
  seed: number;
  valFraction: number;
  trainIds: string[];
  valIds: string[];
}

/**
 * Splits the distinct groups: round(n * valFraction) go to validation, at least one when valFraction > 0 and
 * there are two or more groups, and never all of them. Both lists come back sorted.
 */
export function splitGroups(groups: Iterable<string>, valFraction: number, seed: number): GroupSplit {
  if (!(valFraction >= 0 && valFraction < 1)) throw new Error(`val_fraction must be in [0, 1), got ${valFraction}`);
  const distinct = [...new Set(groups)].sort();
  let valCount = Math.round(distinct.length * valFraction);
  if (valFraction > 0 && valCount === 0 && distinct.length >= 2) valCount = 1;
  if (valCount >= distinct.length) valCount = distinct.length - 1;
  const shuffled = new Rng(seed).shuffle([...distinct]);
  const val = new Set(shuffled.slice(0, Math.max(0, valCount)));
  return { train: distinct.filter((g) => !val.has(g)), val: distinct.filter((g) => val.has(g)) };
}

/** The split of items by their group, in split.json's shape (ids sorted). */
export function splitItems(items: Iterable<{ id: string; group: string }>, valFraction: number, seed: number): SplitFile {
  const list = [...items];
  const { train, val } = splitGroups(list.map((item) => item.group), valFraction, seed);
  const valGroups = new Set(val);
  const ids = list.map((item) => ({ id: item.id, val: valGroups.has(item.group) }));
  return {
    seed,
    valFraction,
    train,
    val,
    trainIds: ids.filter((item) => !item.val).map((item) => item.id).sort(),
    valIds: ids.filter((item) => item.val).map((item) => item.id).sort(),
  };
}
