// Joining typed arrays. Buffer.concat is not used for this: for small totals it may return a view into
// Node's shared allocation pool, so its `.buffer` would hold other data too (weights files hand `.buffer` on).

type JoinableArray = Uint8Array | Float32Array;

/** One new array of exactly the parts' total length holding them in order (`create` makes the empty result). */
export function concatArrays<T extends JoinableArray>(parts: readonly ArrayLike<number>[], create: (length: number) => T): T {
  const joined = create(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}
