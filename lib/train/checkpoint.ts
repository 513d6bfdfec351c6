// Training checkpoints in ctx.checkpointDir. Each one is a folder `ckpt-<seq>` holding float32 tensor groups
// (`<group>.bin`) and `state.json`, which lists every group's tensors, byte size and xxhash64 and the JSON
// training state. A checkpoint is built in a temp folder and renamed into place only when complete, and the
// previous complete checkpoint is deleted only after that, so a crash at any moment leaves at least one
// complete checkpoint. On load the newest one is verified (sizes, digests, tensor names and shapes against
// the model); a checkpoint that fails is refused with the reason, renamed `rejected-…`, and the previous
// one is tried.
import fs from 'node:fs';
import path from 'node:path';
import { xxhash64 } from 'hash-wasm';
import { concatArrays } from '../typed-arrays.js';
import { fsyncDir } from '../atomic.js';

export const CHECKPOINT_FORMAT = 'flow.train-checkpoint/v1';

export interface NamedArray {
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface TensorSignature {
  name: string;
  shape: number[];
}

interface GroupManifest {
  file: string;
  bytes: number;
  xxhash64: string;
  tensors: TensorSignature[];
}

interface StateFile<S> {
  format: string;
  seq: number;
  writtenAt: string;
  groups: Record<string, GroupManifest>;
  state: S;
}

export interface Checkpoint<S> {
  /** Folder of this checkpoint. */
  dir: string;
  seq: number;
  state: S;
  groups: Record<string, NamedArray[]>;
}

const CKPT_PREFIX = 'ckpt-';

function sequenceOf(name: string): number | null {
  const match = /^ckpt-(\d+)$/.exec(name);
  return match ? Number(match[1]) : null;
}

/** Complete checkpoint folders in `dir`, newest first. */
export function listCheckpoints(dir: string): { dir: string; seq: number }[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => ({ name, seq: sequenceOf(name) }))
    .filter((entry): entry is { name: string; seq: number } => entry.seq !== null)
    .sort((a, b) => b.seq - a.seq)
    .map((entry) => ({ dir: path.join(dir, entry.name), seq: entry.seq }));
}

function asBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

async function writeSynced(file: string, chunks: Uint8Array[]): Promise<void> {
  const handle = await fs.promises.open(file, 'w');
  try {
    for (const chunk of chunks) await handle.write(chunk);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a new checkpoint atomically; returns its folder. Keeps the one before it (`keep` complete ones in all)
 * and deletes older ones only after the new one is in place.
 */
export async function writeCheckpoint<S>(
  dir: string,
  state: S,
  groups: Record<string, NamedArray[]>,
  keep = 2,
): Promise<string> {
  await fs.promises.mkdir(dir, { recursive: true });
  const existing = listCheckpoints(dir);
  const seq = (existing[0]?.seq ?? 0) + 1;
  const finalDir = path.join(dir, `${CKPT_PREFIX}${String(seq).padStart(8, '0')}`);
  const tempDir = path.join(dir, `${TEMP_PREFIX}${path.basename(finalDir)}-${process.pid}`);
  // Partial checkpoints of a crashed or failed writer (one stage owns this folder at a time: its key's lock).
  await removePartialCheckpoints(dir);
  await fs.promises.mkdir(tempDir);
  try {
    await fillCheckpoint(tempDir, seq, state, groups);
    await fs.promises.rename(tempDir, finalDir);
  } catch (error) {
    await fs.promises.rm(tempDir, { recursive: true, force: true });
    throw error;
  }
  await fsyncDir(dir);
  for (const old of listCheckpoints(dir).slice(keep)) await fs.promises.rm(old.dir, { recursive: true, force: true });
  return finalDir;
}

const TEMP_PREFIX = '.tmp-';

/** Removes temp folders of checkpoints that were never completed; returns how many. */
export async function removePartialCheckpoints(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return 0;
  }
  const partial = names.filter((name) => name.startsWith(TEMP_PREFIX));
  for (const name of partial) await fs.promises.rm(path.join(dir, name), { recursive: true, force: true });
  return partial.length;
}

async function fillCheckpoint<S>(tempDir: string, seq: number, state: S, groups: Record<string, NamedArray[]>): Promise<void> {
  const manifests: Record<string, GroupManifest> = {};
  for (const [group, arrays] of Object.entries(groups)) {
    const joined = concatArrays(arrays.map((array) => asBytes(array.values)), (length) => new Uint8Array(length));
    const file = `${group}.bin`;
    await writeSynced(path.join(tempDir, file), [joined]);
    manifests[group] = {
      file,
      bytes: joined.byteLength,
      xxhash64: await xxhash64(joined),
      tensors: arrays.map((array) => ({ name: array.name, shape: [...array.shape] })),
    };
  }
  const stateFile: StateFile<S> = { format: CHECKPOINT_FORMAT, seq, writtenAt: new Date().toISOString(), groups: manifests, state };
  await writeSynced(path.join(tempDir, 'state.json'), [Buffer.from(JSON.stringify(stateFile))]);
}

/** Reads and verifies one checkpoint folder; throws a message naming the file and what is wrong. */
export async function readCheckpoint<S>(dir: string): Promise<Checkpoint<S>> {
  const stateFile = path.join(dir, 'state.json');
  let parsed: StateFile<S>;
  try {
    parsed = JSON.parse(await fs.promises.readFile(stateFile, 'utf8')) as StateFile<S>;
  } catch (error) {
    throw new Error(`${stateFile}: unreadable (${(error as Error).message})`);
  }
  if (parsed.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${stateFile}: format ${String(parsed.format)}, expected ${CHECKPOINT_FORMAT}`);
  }
  const groups: Record<string, NamedArray[]> = {};
  for (const [group, manifest] of Object.entries(parsed.groups)) {
    const file = path.join(dir, manifest.file);
    let data: Buffer;
    try {
      data = await fs.promises.readFile(file);
    } catch (error) {
      throw new Error(`${file}: missing (${(error as Error).message})`);
    }
    if (data.byteLength !== manifest.bytes) {
      throw new Error(`${file}: truncated or overwritten: ${data.byteLength} bytes, state.json says ${manifest.bytes}`);
    }
    const digest = await xxhash64(data);
    if (digest !== manifest.xxhash64) {
      throw new Error(`${file}: corrupt: xxhash64 ${digest}, state.json says ${manifest.xxhash64}`);
    }
    // Copy into an aligned buffer: Buffer slices may start at offsets Float32Array cannot view.
    const floats = new Float32Array(manifest.bytes / 4);
    new Uint8Array(floats.buffer).set(data);
    let offset = 0;
    groups[group] = manifest.tensors.map((tensor) => {
      const size = tensor.shape.reduce((a, b) => a * b, 1);
      if (offset + size > floats.length) throw new Error(`${file}: tensor ${tensor.name} lies past the end of the file`);
      const values = floats.slice(offset, offset + size);
      offset += size;
      return { name: tensor.name, shape: tensor.shape, values };
    });
    if (offset !== floats.length) throw new Error(`${file}: ${floats.length - offset} floats beyond the listed tensors`);
  }
  return { dir, seq: parsed.seq, state: parsed.state, groups };
}

/** Throws unless `arrays` holds exactly the tensors `expected` lists, by name and shape, in order. */
export function checkSignature(arrays: readonly NamedArray[], expected: readonly TensorSignature[], what: string): void {
  if (arrays.length !== expected.length) {
    throw new Error(`${what}: has ${arrays.length} tensors but this model has ${expected.length}: written for another model`);
  }
  for (let i = 0; i < expected.length; i++) {
    const found = arrays[i]!;
    const want = expected[i]!;
    if (found.name !== want.name || found.shape.join('x') !== want.shape.join('x')) {
      throw new Error(
        `${what}: tensor ${i} is ${found.name} [${found.shape}] but this model has ${want.name} [${want.shape}]: written for another model`,
      );
    }
  }
}

/**
 * The newest checkpoint that reads back complete and passes `accept` (which throws a reason to refuse it).
 * Refused ones are renamed `rejected-<name>` (kept for inspection, never tried again) and reported via `report`.
 */
export async function loadLatestCheckpoint<S>(
  dir: string,
  accept: (checkpoint: Checkpoint<S>) => void,
  report: (line: string) => void,
): Promise<Checkpoint<S> | null> {
  await removePartialCheckpoints(dir);
  let refused = 0;
  for (const candidate of listCheckpoints(dir)) {
    try {
      const checkpoint = await readCheckpoint<S>(candidate.dir);
      accept(checkpoint);
      return checkpoint;
    } catch (error) {
      const rejected = path.join(dir, `rejected-${path.basename(candidate.dir)}`);
      await fs.promises.rm(rejected, { recursive: true, force: true });
      await fs.promises.rename(candidate.dir, rejected);
      report(`refused checkpoint ${candidate.dir}: ${(error as Error).message}; moved it to ${rejected}`);
      refused += 1;
    }
  }
  // The run's status line said it would resume; say plainly that it does not.
  if (refused > 0) report(`starting over: no usable checkpoint (${refused} refused)`);
  return null;
}
