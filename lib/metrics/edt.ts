// Exact Euclidean distance transform in any number of dimensions with anisotropic spacing
// (Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled Functions", 2012): one pass of the 1D
// lower-envelope-of-parabolas transform per axis, O(N) overall. HD95 on a 240x240x155 volume needs two of
// these; brute force over surface pairs would be quadratic in the surface size.

/**
 * Squared distance (in physical units², from `spacing`) from every element to the nearest element where
 * `features` is non-zero; Infinity everywhere when there is no feature.
 * `shape` is row-major with the last axis fastest (e.g. [Z, Y, X] or [H, W]); `spacing` is in the same order.
 */
export function squaredDistanceTransform(features: Uint8Array, shape: readonly number[], spacing: readonly number[]): Float64Array {
  checkGeometry(features.length, shape, spacing);
  const total = features.length;
  const dist = new Float64Array(total);
  for (let i = 0; i < total; i++) dist[i] = features[i] ? 0 : Infinity;
  const longest = Math.max(...shape);
  const line = new Float64Array(longest);
  const out = new Float64Array(longest);
  const hull = new Int32Array(longest);
  const bounds = new Float64Array(longest + 1);
  let stride = total;
  for (let axis = 0; axis < shape.length; axis++) {
    const n = shape[axis]!;
    stride /= n;
    const outer = total / (n * stride);
    const step = spacing[axis]!;
    for (let o = 0; o < outer; o++) {
      for (let inner = 0; inner < stride; inner++) {
        const start = o * n * stride + inner;
        for (let i = 0; i < n; i++) line[i] = dist[start + i * stride]!;
        if (transformLine(line, n, step, out, hull, bounds)) {
          for (let i = 0; i < n; i++) dist[start + i * stride] = out[i]!;
        }
      }
    }
  }
  return dist;
}

/**
 * 1D transform of one line: out[p] = min_q ((p - q)·step)² + f[q]. Only finite samples become parabolas, so
 * Infinity never enters the intersection arithmetic. Returns false (out untouched) when the line has none.
 */
function transformLine(
  f: Float64Array, n: number, step: number, out: Float64Array, hull: Int32Array, bounds: Float64Array,
): boolean {
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q]!;
    if (fq === Infinity) continue;
    if (k < 0) {
      k = 0;
      hull[0] = q;
      bounds[0] = -Infinity;
      bounds[1] = Infinity;
      continue;
    }
    // Where the parabola rooted at q overtakes the hull's last one (physical coordinate); drop hull parabolas
    // it hides. bounds[0] is -Infinity, so the loop stops at the first parabola at the latest.
    let s = intersection(f, q, hull[k]!, step);
    while (s <= bounds[k]!) {
      k--;
      s = intersection(f, q, hull[k]!, step);
    }
    k++;
    hull[k] = q;
    bounds[k] = s;
    bounds[k + 1] = Infinity;
  }
  if (k < 0) return false;
  let j = 0;
  for (let p = 0; p < n; p++) {
    const xp = p * step;
    while (bounds[j + 1]! < xp) j++;
    const v = hull[j]!;
    const d = xp - v * step;
    out[p] = d * d + f[v]!;
  }
  return true;
}

function intersection(f: Float64Array, q: number, v: number, step: number): number {
  const xq = q * step;
  const xv = v * step;
  return (f[q]! + xq * xq - (f[v]! + xv * xv)) / (2 * (xq - xv));
}

export function checkGeometry(length: number, shape: readonly number[], spacing: readonly number[]): void {
  if (shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new Error(`mask shape ${JSON.stringify(shape)} must be a list of positive integers`);
  }
  if (spacing.length !== shape.length || spacing.some((s) => !(s > 0) || !Number.isFinite(s))) {
    throw new Error(`spacing ${JSON.stringify(spacing)} must hold one positive, finite value per axis of shape ${JSON.stringify(shape)}`);
  }
  const expected = shape.reduce((a, b) => a * b, 1);
  if (length !== expected) {
    throw new Error(`mask has ${length} elements but shape ${JSON.stringify(shape)} needs ${expected}`);
  }
}
