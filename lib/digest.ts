// Content digests of raw files, recorded by the ingest stages in index.json (docs/contracts.md) so that a raw
// file changed under the same name changes index.json, and with it every downstream cache key. xxhash128
// (hash-wasm) is what the engine's own content digests use: fast, and collision-resistant against accidents.
import { xxhash128 } from 'hash-wasm';

/** Size and content digest of one raw file, as index.json's `files` map holds them. */
export interface FileDigest {
  bytes: number;
  xxh128: string;
}

/** The digest of bytes already read (ingest decodes from the same buffer, so each file is read once). */
export async function digestBytes(data: Uint8Array): Promise<FileDigest> {
  return { bytes: data.byteLength, xxh128: await xxhash128(data) };
}

/** The entries of `digests` ordered by path, so the JSON written from them is byte-identical across runs. */
export function sortedDigests(digests: ReadonlyMap<string, FileDigest>): Record<string, FileDigest> {
  const sorted: Record<string, FileDigest> = {};
  for (const file of [...digests.keys()].sort()) sorted[file] = digests.get(file)!;
  return sorted;
}
