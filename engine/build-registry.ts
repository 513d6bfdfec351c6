// Run by `npm run build` after tsc (as dist/engine/build-registry.js): imports each compiled stage module,
// reads its declaration, its params schema and the digest of its TypeScript sources, and writes
// dist/stages/registry.json, which the engine reads instead of importing the (heavy) stage modules.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StageCatalogEntry } from './catalog.js';
import { describeStageModule, writeRegistryFile } from './registry.js';

export async function buildRegistry(projectRoot: string): Promise<StageCatalogEntry[]> {
  const distStages = path.join(projectRoot, 'dist', 'stages');
  const entries: StageCatalogEntry[] = [];
  const folders = fs.existsSync(distStages) ? fs.readdirSync(distStages).sort() : [];
  for (const folder of folders) {
    const modulePath = path.join(distStages, folder, 'index.js');
    const sourcePath = path.join(projectRoot, 'stages', folder, 'index.ts');
    if (!fs.existsSync(modulePath) || !fs.existsSync(sourcePath)) continue;
    // Import once to learn the kind, then describe with the kind's schema file.
    const probe = await describeStageModule({ modulePath, sourcePath, schemaPath: null, projectRoot });
    const schemaPath = path.join(projectRoot, 'schemas', 'stages', `${probe.kind}.schema.json`);
    const entry = await describeStageModule({ modulePath, sourcePath, schemaPath, projectRoot });
    const clash = entries.find((e) => e.kind === entry.kind);
    if (clash) throw new Error(`stage kind ${entry.kind} is declared twice: ${clash.modulePath} and ${modulePath}`);
    entries.push(entry);
  }
  writeRegistryFile(path.join(distStages, 'registry.json'), entries);
  return entries;
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  // dist/engine/build-registry.js → project root is two folders up.
  const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  try {
    const entries = await buildRegistry(projectRoot);
    process.stdout.write(`registry: ${entries.length} stage kinds → dist/stages/registry.json\n`);
  } catch (err) {
    process.stderr.write(`build-registry: error: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
