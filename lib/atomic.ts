// Writes that a crash can never leave looking complete: data goes to a temp name in the same folder, is
// flushed, and is renamed over the final name. The one way stages and lib/ write small files (the engine keeps
// its own synchronous twin in engine/fs-util.ts, which it needs on its signal path and must not import lib/).
import fs from 'node:fs';
import path from 'node:path';

let counter = 0;

export function tempNameBeside(target: string): string {
  counter += 1;
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${counter}`);
}

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const temp = tempNameBeside(file);
  const handle = await fs.promises.open(temp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(temp, file);
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}
