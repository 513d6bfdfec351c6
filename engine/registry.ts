// The stage catalog the executor uses: declarations of built-in stage kinds read from a registry JSON written
// at build time (dist/stages/registry.json), so planning and fully cached runs never import stage modules.
// Also computes code digests (shared with build-registry and with tests that register toy stages).
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomicSync } from './atomic-write.js';
import { builtinModules } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { StageCatalog, StageCatalogEntry } from './catalog.js';
import type { JsonObject, StageKind } from './stage.js';
import { canonicalJson } from './pipeline/canonical.js';
import { hashFileContent, hashString } from './hashing.js';
import { readJsonIfExists } from './fs-util.js';

export interface RegistryFile {
  /** Entries with modulePath relative to the registry file's folder (so the tree can move). */
  stages: StageCatalogEntry[];
}

export class MapCatalog implements StageCatalog {
  private readonly byKind = new Map<string, StageCatalogEntry>();
  constructor(entries: Iterable<StageCatalogEntry> = []) {
    for (const e of entries) this.byKind.set(e.kind, e);
  }
  add(entry: StageCatalogEntry): void {
    this.byKind.set(entry.kind, entry);
  }
  get(kind: string): StageCatalogEntry | undefined {
    return this.byKind.get(kind);
  }
  kinds(): string[] {
    return [...this.byKind.keys()].sort();
  }
}

/** Reads one registry JSON; a missing file gives an empty list (e.g. before any stage is built). */
export function readRegistryFile(file: string): StageCatalogEntry[] {
  const reg = readJsonIfExists<RegistryFile>(file);
  if (!reg) return [];
  if (!Array.isArray(reg.stages)) throw new Error(`${file}: no "stages" list; rebuild with \`npm run build\``);
  return reg.stages.map((e) => ({
    ...e,
    modulePath: path.resolve(path.dirname(file), e.modulePath),
    ...(e.platformModule ? { platformModule: path.resolve(path.dirname(file), e.platformModule) } : {}),
  }));
}

export function writeRegistryFile(file: string, entries: StageCatalogEntry[]): void {
  const dir = path.dirname(file);
  const stages = entries.map((e) => ({
    ...e,
    modulePath: path.relative(dir, e.modulePath),
    ...(e.platformModule ? { platformModule: path.relative(dir, e.platformModule) } : {}),
  }));
  writeFileAtomicSync(file, JSON.stringify({ stages } satisfies RegistryFile, null, 1) + '\n');
}

/**
 * The catalog for the CLI: `<flowRoot>/dist/stages/registry.json` plus any registry files listed in
 * FLOW_STAGE_REGISTRY (path-delimited; tests use it to add toy stages to a spawned CLI).
 */
export function loadCatalog(flowRoot: string, extraRegistries: string[] = (process.env.FLOW_STAGE_REGISTRY ?? '').split(path.delimiter).filter(Boolean)): MapCatalog {
  const catalog = new MapCatalog(readRegistryFile(path.join(flowRoot, 'dist', 'stages', 'registry.json')));
  for (const file of extraRegistries) for (const e of readRegistryFile(file)) catalog.add(e);
  return catalog;
}

/**
 * `// flow:digest-also <path>` in a source file: a file (relative to the project root) whose content shapes what
 * that module does without being imported, e.g. native code it loads with require(). It joins the digest.
 */
const DIGEST_ALSO_RE = /^\s*\/\/\s*flow:digest-also\s+(\S+)\s*$/gm;

const IMPORT_RE = /(?:^|[;\s])(?:import|export)\s+(type\s+)?(?:[\w*{}\s,$]+\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function resolveSource(fromFile: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(fromFile), spec);
  const candidates = [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base, `${base}.ts`, path.join(base, 'index.ts')];
  return candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
}

/**
 * Code digest of a stage: its source and every project module it imports transitively (relative imports in
 * the sources; type-only imports and engine/stage.ts do not count: they do not change what runs), plus
 * `name@version` of every npm package those files import, plus the files they name in `flow:digest-also`
 * comments. Returns the digest and the per-file digests.
 */
export async function computeCodeDigest(entrySource: string, projectRoot: string): Promise<{ codeDigest: string; codeFiles: Record<string, string> }> {
  const contractFile = path.join(projectRoot, 'engine', 'stage.ts');
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue = [path.resolve(entrySource)];
  const codeFiles: Record<string, string> = {};
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    codeFiles[path.relative(projectRoot, file).split(path.sep).join('/')] = await hashFileContent(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(DIGEST_ALSO_RE)) {
      const extra = path.resolve(projectRoot, m[1]!);
      if (!fs.existsSync(extra)) throw new Error(`${file}: flow:digest-also names ${m[1]}, which does not exist`);
      codeFiles[path.relative(projectRoot, extra).split(path.sep).join('/')] = await hashFileContent(extra);
    }
    for (const m of text.matchAll(IMPORT_RE)) {
      const typeOnly = m[1] !== undefined;
      const spec = m[2] ?? m[3];
      if (!spec || typeOnly) continue;
      if (spec.startsWith('.')) {
        const resolved = resolveSource(file, spec);
        if (resolved === undefined) throw new Error(`${file}: cannot find the module "${spec}" it imports`);
        if (resolved !== contractFile) queue.push(resolved);
      } else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
        packages.add(packageName(spec));
      }
    }
  }
  for (const name of [...packages].sort()) {
    const pkg = readJsonIfExists<{ version?: string }>(path.join(projectRoot, 'node_modules', name, 'package.json'));
    codeFiles[`npm:${name}`] = pkg?.version ?? 'unknown';
  }
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(codeFiles).sort()) sorted[k] = codeFiles[k]!;
  return { codeDigest: await hashString(canonicalJson(sorted)), codeFiles: sorted };
}

/**
 * Builds a catalog entry by importing a stage module (build time, or a test's toy stage): its declaration,
 * its params schema and its code digest.
 */
export async function describeStageModule(opts: { modulePath: string; sourcePath: string; schemaPath: string | null; projectRoot: string }): Promise<StageCatalogEntry> {
  const mod = (await import(pathToFileURL(opts.modulePath).href)) as { default?: StageKind<JsonObject> };
  const decl = mod.default;
  if (!decl || typeof decl.kind !== 'string' || typeof decl.run !== 'function') {
    throw new Error(`${opts.modulePath}: must default-export defineStage({ kind, version, description, inputs, outputs, run })`);
  }
  let paramsSchema: JsonObject = { type: 'object', additionalProperties: false, properties: {} };
  if (opts.schemaPath !== null) {
    const schema = readJsonIfExists<JsonObject>(opts.schemaPath);
    if (schema) paramsSchema = schema;
    else throw new Error(`stage kind ${decl.kind}: its params schema ${opts.schemaPath} is missing`);
  }
  const { codeDigest, codeFiles } = await computeCodeDigest(opts.sourcePath, opts.projectRoot);
  return {
    kind: decl.kind,
    version: String(decl.version),
    description: decl.description,
    inputs: decl.inputs,
    outputs: decl.outputs,
    paramsSchema,
    modulePath: path.resolve(opts.modulePath),
    codeDigest,
    codeFiles,
    ...(decl.platform ? { platformModule: path.resolve(path.dirname(opts.modulePath), decl.platform) } : {}),
  };
}
