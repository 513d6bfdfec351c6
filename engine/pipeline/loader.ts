// Loads a pipeline file: YAML → overrides → schema check → ${params} interpolation → stage checks against
// the catalog → DAG. Synchronous and light (no stage modules are imported), and it reports every problem
// it can find, each at the place the user wrote it.
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { StageCatalogEntry } from '../catalog.js';
import type { JsonObject, JsonValue } from '../stage.js';
import { canonicalJson } from './canonical.js';
import { PipelineError, q, type Diagnostic } from './diagnostics.js';
import { findCycles, topologicalOrder } from './dag.js';
import { applyOverrides } from './overrides.js';
import { escapeLiteral, tokenize, type Token } from './references.js';
import { checkAgainstSchema, pipelineValidator, kindValidator, type SchemaContext } from './schema.js';
import { displayPath, paramPathText, pathKey, SourceMap, type DocPath, type SourceLocation } from './source.js';
import { didYouMean } from './suggest.js';
import type { CommandPart, InputRef, LoadOptions, ParamSource, ResolvedPipeline, ResolvedStage } from './types.js';

export function loadPipeline(file: string, options: LoadOptions): ResolvedPipeline {
  const absolute = path.resolve(options.baseDir, file);
  let text: string;
  try {
    text = fs.readFileSync(absolute, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new PipelineError([
      { file: shownFile(file, options.baseDir), line: 1, column: 1, message: `cannot read the pipeline file: ${reason}`, hint: 'check the path; it is relative to the current directory' },
    ]);
  }
  return loadPipelineFromText(text, file, options);
}

export function loadPipelineFromText(text: string, file: string, options: LoadOptions): ResolvedPipeline {
  return new Loader(text, file, options).load();
}

/** Thrown inside the loader once a diagnostic has been recorded, to abandon one value without cascading errors. */
class Reported extends Error {}

/** Memo entry of a string whose resolution failed (and was reported). */
const FAILED: unique symbol = Symbol('failed');

/** What the pipeline schema allows for a stage's `params` when it is a string (other strings are reported there). */
const WHOLE_PARAM_REF = /^\$\{params\.[^}]+\}$/;

const BUILTIN_STAGE_KEYS = ['kind', 'description', 'inputs', 'params', 'needs'];

const REF_CONTEXT_HINT = 'stage output references are allowed only in inputs, run, deps, metrics and report';

/** A resolved piece of a string where stage references are allowed. */
type RefPart = { type: 'text'; text: string } | Extract<Token, { type: 'stage' | 'own' }>;

function shownFile(file: string, baseDir: string): string {
  const absolute = path.resolve(baseDir, file);
  const relative = path.relative(baseDir, absolute);
  return relative.startsWith('..') || path.isAbsolute(relative) ? absolute : relative;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringify(value: JsonValue): string {
  return typeof value === 'object' && value !== null ? canonicalJson(value) : String(value);
}

class Loader {
  private readonly diagnostics: Diagnostic[] = [];
  private readonly file: string;
  private readonly absoluteFile: string;
  private readonly overrides: string[];
  private doc!: Document;
  private source!: SourceMap;
  private raw: JsonObject = {};
  private stageNames: string[] = [];
  /** Declared outputs by stage (undefined when the stage's kind is unknown: its refs are not checked). */
  private readonly stageOutputs = new Map<string, Record<string, { type: 'file' | 'dir' }> | undefined>();
  private readonly stageKinds = new Map<string, string | null>();
  /** Resolved strings by document path: each reference is resolved (and reported) once. */
  private readonly memo = new Map<string, JsonValue | typeof FAILED>();
  private readonly resolving: { key: string; path: DocPath }[] = [];
  private readonly reportedCycles = new Set<string>();
  /** stage → upstream stage → where the first reference to it was written. */
  private readonly edges = new Map<string, Map<string, SourceLocation>>();

  constructor(
    private readonly text: string,
    file: string,
    private readonly options: LoadOptions,
  ) {
    this.file = shownFile(file, options.baseDir);
    this.absoluteFile = path.resolve(options.baseDir, file);
    this.overrides = [...(options.overrides ?? [])];
  }

  load(): ResolvedPipeline {
    this.parse();
    this.diagnostics.push(...applyOverrides(this.doc, this.overrides, this.source, (parent) => this.implicitKeys(parent)));
    const raw = this.doc.toJS({ maxAliasCount: 10_000 }) as JsonValue;
    if (!isObject(raw)) {
      this.error(this.source.locate([], 'value'), 'a pipeline is a map with `name`, `params` and `stages`', 'start from an example in pipelines/');
      throw new PipelineError(this.diagnostics);
    }
    this.raw = raw;
    this.checkDocumentSchema();

    const stagesRaw = isObject(raw.stages) ? raw.stages : {};
    this.stageNames = Object.keys(stagesRaw);
    for (const name of this.stageNames) this.declareStage(name, stagesRaw[name]);

    const params = this.resolveParamsBlock();
    const stages: Record<string, ResolvedStage> = {};
    const configStages: JsonObject = {};
    for (const name of this.stageNames) {
      const stageRaw = stagesRaw[name];
      if (!isObject(stageRaw)) continue;
      const resolved = 'run' in stageRaw ? this.commandStage(name, stageRaw) : this.builtinStage(name, stageRaw);
      if (resolved) {
        stages[name] = resolved.stage;
        configStages[name] = resolved.config;
      }
    }
    const metrics = typeof raw.metrics === 'string' ? this.topLevelRef(['metrics'], raw.metrics) : undefined;
    const report: InputRef[] = [];
    const configReport: JsonValue[] = [];
    if (Array.isArray(raw.report)) {
      raw.report.forEach((entry, i) => {
        if (typeof entry !== 'string') return;
        const ref = this.topLevelRef(['report', i], entry);
        if (ref) {
          report.push(ref.ref);
          configReport.push(ref.config);
        }
      });
    }
    const order = this.orderStages();
    if (this.diagnostics.length > 0) throw new PipelineError(this.diagnostics);

    for (const name of order) stages[name]!.needs = [...(this.edges.get(name)?.keys() ?? [])];
    const config: JsonObject = { ...raw, params: escapeConfig(params) as JsonObject, stages: configStages };
    if (metrics) config.metrics = metrics.config;
    if (raw.report !== undefined) config.report = configReport;
    if (raw.params === undefined) delete config.params;
    const orderedStages: Record<string, ResolvedStage> = {};
    for (const name of this.stageNames) orderedStages[name] = stages[name]!;
    return {
      name: String(raw.name),
      file: this.absoluteFile,
      baseDir: this.options.baseDir,
      overrides: this.overrides,
      config,
      params,
      stages: orderedStages,
      order,
      ...(metrics ? { metrics: metrics.ref } : {}),
      report,
    };
  }

  // ---- parsing and the document schema ---------------------------------------------------------------

  private parse(): void {
    const lineCounter = new LineCounter();
    this.doc = parseDocument(this.text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    this.source = new SourceMap(this.doc, lineCounter, this.file);
    if (this.doc.errors.length === 0) return;
    // After the first syntax error the parser's further complaints are mostly its consequences.
    const firstSyntax = this.doc.errors.find((e) => e.code !== 'DUPLICATE_KEY');
    for (const error of this.doc.errors) {
      if (error.code !== 'DUPLICATE_KEY' && error !== firstSyntax) continue;
      const at = this.source.at(error.pos[0]);
      if (error.code === 'DUPLICATE_KEY') {
        const key = /^("[^"]*"|'[^']*'|[^:,{}[\]\n]+)/.exec(this.text.slice(error.pos[0]))?.[1]?.trim() ?? 'key';
        this.error(at, `duplicate key ${q(key)}`, 'each key may appear once in a map; remove or rename one of them');
      } else {
        // `{ epochs: ${params.n} }` is a YAML error: `{` opens a flow map unless the reference is quoted.
        const line = this.text.split('\n')[at.line - 1] ?? '';
        const hint = /(^|[\s:,[{])\$\{/.test(line) ? 'quote references that start a value: "${params.x}"' : yamlHint(error.code);
        this.error(at, `YAML syntax error: ${error.message.replace(/\s+/g, ' ').trim()}`, hint);
      }
    }
    throw new PipelineError(this.diagnostics);
  }

  private checkDocumentSchema(): void {
    const context: SchemaContext = {
      locate: (rel, part) => ({ location: this.source.locate(rel, part), note: '' }),
      where: (rel) => describeDocumentPath(rel),
      name: (rel) => q(displayPath(rel)),
      noun: 'key',
    };
    this.diagnostics.push(...checkAgainstSchema(pipelineValidator(), this.raw, context).diagnostics);
  }

  /** Keys --set may write under `parent` without `+`: the params a stage's kind declares. */
  private implicitKeys(parent: DocPath): string[] {
    if (parent.length !== 3 || parent[0] !== 'stages' || parent[2] !== 'params') return [];
    const kind = this.doc.getIn(['stages', parent[1], 'kind']);
    const entry = typeof kind === 'string' ? this.options.catalog.get(kind) : undefined;
    const properties = entry?.paramsSchema.properties;
    return isObject(properties) ? Object.keys(properties) : [];
  }

  private declareStage(name: string, stageRaw: JsonValue | undefined): void {
    if (!isObject(stageRaw)) return;
    if ('run' in stageRaw) {
      this.stageKinds.set(name, null);
      const outs: Record<string, { type: 'file' | 'dir' }> = {};
      if (isObject(stageRaw.outs)) {
        for (const [out, file] of Object.entries(stageRaw.outs)) outs[out] = { type: typeof file === 'string' && file.endsWith('/') ? 'dir' : 'file' };
      }
      this.stageOutputs.set(name, outs);
      return;
    }
    const kind = typeof stageRaw.kind === 'string' ? stageRaw.kind : undefined;
    const entry = kind === undefined ? undefined : this.options.catalog.get(kind);
    this.stageKinds.set(name, kind ?? null);
    this.stageOutputs.set(name, entry ? Object.fromEntries(Object.entries(entry.outputs).map(([k, v]) => [k, { type: v.type }])) : undefined);
  }

  // ---- ${params} resolution ------------------------------------------------------------------------

  private resolveParamsBlock(): JsonObject {
    if (this.raw.params === undefined || !isObject(this.raw.params)) return {};
    try {
      return this.resolveValue(['params'], this.raw.params) as JsonObject;
    } catch (error) {
      if (error instanceof Reported) return {};
      throw error;
    }
  }

  /** Resolves every `${params...}` in a value (stage refs are errors here). Throws Reported after recording. */
  private resolveValue(at: DocPath, value: JsonValue): JsonValue {
    if (typeof value === 'string') return this.resolveString(at, value);
    if (value === null || typeof value !== 'object') return value;
    let failed = false;
    const attempt = (childPath: DocPath, child: JsonValue): JsonValue => {
      try {
        return this.resolveValue(childPath, child);
      } catch (error) {
        if (!(error instanceof Reported)) throw error;
        failed = true;
        return null;
      }
    };
    const result: JsonValue = Array.isArray(value)
      ? value.map((child, i) => attempt([...at, i], child))
      : Object.fromEntries(Object.entries(value).map(([key, child]) => [key, attempt([...at, key], child)]));
    if (failed) throw new Reported();
    return result;
  }

  private resolveString(at: DocPath, text: string): JsonValue {
    const key = pathKey(at);
    const known = this.memo.get(key);
    if (known === FAILED) throw new Reported();
    if (known !== undefined) return known;
    const active = this.resolving.findIndex((r) => r.key === key);
    if (active >= 0) {
      this.reportParamCycle(this.resolving.slice(active).map((r) => r.path));
      throw new Reported();
    }
    this.resolving.push({ key, path: at });
    try {
      const { tokens, errors } = tokenize(text);
      if (errors.length > 0) {
        for (const e of errors) this.error(this.source.locate(at, 'value'), e.message, e.hint);
        throw new Reported();
      }
      const misplaced = tokens.find((t) => t.type === 'stage' || t.type === 'own');
      if (misplaced && 'raw' in misplaced) {
        this.error(this.source.locate(at, 'value'), `${q(misplaced.raw)} cannot be used in ${q(displayPath(at))}`, REF_CONTEXT_HINT);
        throw new Reported();
      }
      let value: JsonValue;
      if (tokens.length === 1 && tokens[0]!.type === 'param') value = this.lookupParam(tokens[0]!.path, at);
      else {
        value = '';
        for (const token of tokens) value += token.type === 'param' ? stringify(this.lookupParam(token.path, at)) : token.type === 'text' ? token.text : '';
      }
      this.memo.set(key, value);
      return value;
    } catch (error) {
      this.memo.set(key, FAILED);
      throw error;
    } finally {
      this.resolving.pop();
    }
  }

  /** The resolved value of `params.<paramPath>`, referenced from `from`. */
  private lookupParam(paramPath: string[], from: DocPath): JsonValue {
    let value: JsonValue | undefined = this.raw.params;
    let at: DocPath | undefined = ['params'];
    for (let i = 0; i < paramPath.length; i++) {
      const seg = paramPath[i]!;
      if (at && typeof value === 'string') {
        value = this.resolveString(at, value);
        at = undefined;
      }
      const shown = `params.${paramPath.slice(0, i + 1).join('.')}`;
      if (isObject(value) && Object.hasOwn(value, seg)) {
        value = value[seg]!;
        if (at) at = [...at, seg];
      } else if (Array.isArray(value) && /^\d+$/.test(seg) && Number(seg) < value.length) {
        value = value[Number(seg)]!;
        if (at) at = [...at, Number(seg)];
      } else {
        const parent = i === 0 ? 'params' : `params.${paramPath.slice(0, i).join('.')}`;
        const hint = isObject(value)
          ? didYouMean(seg, Object.keys(value)) ?? `${q(parent)} has: ${Object.keys(value).join(', ') || 'no keys'}`
          : Array.isArray(value)
            ? `${q(parent)} is a list of ${value.length}`
            : `${q(parent)} is ${value === undefined ? 'not defined' : `a ${value === null ? 'null' : typeof value}`}`;
        this.error(this.source.locate(from, 'value'), `reference to unknown param ${q(shown)}`, hint);
        throw new Reported();
      }
    }
    return at ? this.resolveValue(at, value as JsonValue) : (value as JsonValue);
  }

  private reportParamCycle(members: DocPath[]): void {
    const names = members.map((m) => (m[0] === 'params' ? paramPathText(m.slice(1)) : displayPath(m)));
    const id = [...names].sort().join('\n');
    if (this.reportedCycles.has(id)) return;
    this.reportedCycles.add(id);
    const where = members.map((m, i) => `${names[i]} at ${formatLocation(this.source.locate(m, 'value'))}`).join('; ');
    this.error(this.source.locate(members[0]!, 'value'), `param reference cycle: ${[...names, names[0]].join(' → ')}`, `break the cycle: ${where}`);
  }

  /**
   * Where the value at `base` + `rel` was written, following whole `${params...}` references; `via` is the
   * outermost reference (where a message should point) and the param it finally came from.
   */
  private originOf(base: DocPath, rel: DocPath, depth = 0): { at: DocPath; via?: { ref: DocPath; param: string } } {
    let at: (string | number)[] = [...base];
    let node = getIn(this.raw, at);
    let ref: DocPath | undefined;
    const follow = () => {
      while (typeof node === 'string' && depth < 64) {
        const { tokens, errors } = tokenize(node);
        const only = tokens[0];
        if (errors.length > 0 || tokens.length !== 1 || only?.type !== 'param') return;
        ref ??= at;
        at = [...this.originOf(['params'], only.path, depth + 1).at];
        node = getIn(this.raw, at);
      }
    };
    for (const seg of rel) {
      follow();
      const index = Array.isArray(node) ? Number(seg) : String(seg);
      at = [...at, index];
      node = getIn(node, [index]);
    }
    follow();
    return ref ? { at, via: { ref, param: paramPathText(at.slice(1)) } } : { at };
  }

  /**
   * A string where stage references are allowed: `${params}` interpolated, stage and own-output refs kept.
   * `config` is the text as the config snapshot shows it.
   */
  private resolveRefString(at: DocPath, text: string, allowOwn: boolean): { parts: RefPart[]; config: string; wholeParam?: JsonValue } {
    const { tokens, errors } = tokenize(text);
    if (errors.length > 0) {
      for (const e of errors) this.error(this.source.locate(at, 'value'), e.message, e.hint);
      throw new Reported();
    }
    const parts: RefPart[] = [];
    let config = '';
    let wholeParam: JsonValue | undefined;
    for (const token of tokens) {
      if (token.type === 'text') {
        parts.push(token);
        config += escapeLiteral(token.text);
      } else if (token.type === 'param') {
        const value = this.lookupParam(token.path, at);
        if (tokens.length === 1) wholeParam = value;
        parts.push({ type: 'text', text: stringify(value) });
        config += escapeLiteral(stringify(value));
      } else {
        if (token.type === 'own' && !allowOwn) {
          this.error(this.source.locate(at, 'value'), `${q(token.raw)} can be used only in a command stage's \`run\``, 'refer to another stage\'s output as ${stages.S.outs.O}');
          throw new Reported();
        }
        parts.push(token);
        config += token.raw;
      }
    }
    const merged: RefPart[] = [];
    for (const part of parts) {
      const last = merged[merged.length - 1];
      if (part.type === 'text' && last?.type === 'text') merged[merged.length - 1] = { type: 'text', text: last.text + part.text };
      else merged.push(part);
    }
    return wholeParam === undefined ? { parts: merged, config } : { parts: merged, config, wholeParam };
  }

  /** Checks a `${stages.S.outs.O}` reference and records the DAG edge. */
  private stageRef(token: Extract<Token, { type: 'stage' }>, at: DocPath, fromStage: string | undefined): InputRef {
    const location = this.source.locate(at, 'value');
    if (!this.stageOutputs.has(token.stage)) {
      this.error(location, `${q(token.raw)} refers to unknown stage ${q(token.stage)}`, didYouMean(token.stage, this.stageNames) ?? `stages: ${this.stageNames.join(', ')}`);
      throw new Reported();
    }
    const outputs = this.stageOutputs.get(token.stage);
    if (outputs && !Object.hasOwn(outputs, token.output)) {
      const kind = this.stageKinds.get(token.stage);
      const names = Object.keys(outputs);
      this.error(
        location,
        `stage ${q(token.stage)}${kind ? ` (kind ${q(kind)})` : ''} has no output ${q(token.output)}; its outputs: ${names.join(', ') || 'none'}`,
        didYouMean(token.output, names),
      );
      throw new Reported();
    }
    if (fromStage !== undefined) this.addEdge(fromStage, token.stage, location);
    return { type: 'stage', stage: token.stage, output: token.output };
  }

  /** An input, dep, metrics or report entry: one stage output reference, or a path. */
  private inputRef(at: DocPath, text: string, fromStage: string | undefined): { ref: InputRef; config: string } {
    const { parts, config, wholeParam } = this.resolveRefString(at, text, false);
    const location = this.source.locate(at, 'value');
    if (wholeParam !== undefined && typeof wholeParam !== 'string') {
      this.error(location, `${q(displayPath(at))} must be a path or a stage output, but ${q(text)} is ${describe(wholeParam)}`);
      throw new Reported();
    }
    const stageParts = parts.filter((p) => p.type === 'stage');
    if (stageParts.length > 0) {
      if (parts.length > 1) {
        this.error(location, `${q(displayPath(at))} must be either one stage output reference or a path, not a mix: ${q(text)}`, 'a command stage can combine outputs in its `run` text');
        throw new Reported();
      }
      return { ref: this.stageRef(stageParts[0] as Extract<Token, { type: 'stage' }>, at, fromStage), config };
    }
    const pathText = parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
    if (pathText.trim() === '') {
      this.error(location, `${q(displayPath(at))} is empty`, 'give a path or ${stages.S.outs.O}');
      throw new Reported();
    }
    return { ref: { type: 'path', path: path.resolve(this.options.baseDir, pathText) }, config };
  }

  private topLevelRef(at: DocPath, text: string): { ref: InputRef; config: string } | undefined {
    return this.attempt(() => this.inputRef(at, text, undefined));
  }

  private attempt<T>(work: () => T): T | undefined {
    try {
      return work();
    } catch (error) {
      if (error instanceof Reported) return undefined;
      throw error;
    }
  }

  private addEdge(from: string, to: string, location: SourceLocation): void {
    let ups = this.edges.get(from);
    if (!ups) this.edges.set(from, (ups = new Map()));
    if (!ups.has(to)) ups.set(to, location);
  }

  private checkNeeds(name: string, needs: JsonValue | undefined): void {
    if (!Array.isArray(needs)) return;
    needs.forEach((need, i) => {
      if (typeof need !== 'string') return;
      const location = this.source.locate(['stages', name, 'needs', i], 'value');
      if (!this.stageOutputs.has(need)) {
        this.error(location, `stage ${q(name)} needs unknown stage ${q(need)}`, didYouMean(need, this.stageNames) ?? `stages: ${this.stageNames.join(', ')}`);
      } else {
        this.addEdge(name, need, location);
      }
    });
  }

  // ---- stages --------------------------------------------------------------------------------------

  private builtinStage(name: string, stageRaw: JsonObject): { stage: ResolvedStage; config: JsonObject } | undefined {
    const base: DocPath = ['stages', name];
    const kind = typeof stageRaw.kind === 'string' ? stageRaw.kind : undefined;
    const entry = kind === undefined ? undefined : this.options.catalog.get(kind);
    let ok = true;
    if (kind !== undefined && !entry) {
      const kinds = this.options.catalog.kinds();
      this.error(this.source.locate([...base, 'kind'], 'value'), `unknown stage kind ${q(kind)}`, didYouMean(kind, kinds) ?? `built-in kinds: ${kinds.join(', ')}`);
      ok = false;
    }

    const inputs: Record<string, InputRef> = {};
    const configInputs: JsonObject = {};
    if (isObject(stageRaw.inputs)) {
      for (const [input, value] of Object.entries(stageRaw.inputs)) {
        if (entry && !Object.hasOwn(entry.inputs, input)) {
          const declared = Object.keys(entry.inputs);
          this.error(
            this.source.locate([...base, 'inputs', input], 'key'),
            `kind ${q(entry.kind)} has no input ${q(input)}; its inputs: ${declared.join(', ') || 'none'}`,
            didYouMean(input, declared),
          );
          ok = false;
          continue;
        }
        if (typeof value !== 'string') continue; // the schema check reported it
        const ref = this.attempt(() => this.inputRef([...base, 'inputs', input], value, name));
        if (ref) {
          inputs[input] = ref.ref;
          configInputs[input] = ref.config;
        } else ok = false;
      }
    }
    // A stage with a misspelt key (say `input:`) was reported as such; its inputs are not "missing" too.
    const misspelt = Object.keys(stageRaw).some((key) => !BUILTIN_STAGE_KEYS.includes(key));
    if (entry && !misspelt) {
      const missing = Object.entries(entry.inputs).filter(([input, d]) => !d.optional && !(isObject(stageRaw.inputs) && Object.hasOwn(stageRaw.inputs, input)));
      for (const [input] of missing) {
        const at = isObject(stageRaw.inputs) ? [...base, 'inputs'] : base;
        this.error(this.source.locate(at, 'key'), `stage ${q(name)} (kind ${q(entry.kind)}) is missing required input ${q(input)}`, `add it under inputs: ${input}: \${stages.S.outs.O} or a path`);
        ok = false;
      }
    }
    this.checkNeeds(name, stageRaw.needs);

    const params = this.stageParams(name, stageRaw, entry);
    if (!params || !ok || !entry) return undefined;
    const config: JsonObject = { ...stageRaw, params: escapeConfig(params.validated) as JsonObject };
    if (stageRaw.inputs !== undefined) config.inputs = configInputs;
    return {
      stage: {
        name,
        kind: entry.kind,
        params: params.validated,
        inputs,
        outputs: Object.fromEntries(Object.entries(entry.outputs).map(([k, v]) => [k, { type: v.type }])),
        needs: [],
        paramSources: params.sources,
      },
      config,
    };
  }

  /** Resolves a built-in stage's params and validates them against its kind's schema (defaults applied). */
  private stageParams(name: string, stageRaw: JsonObject, entry: StageCatalogEntry | undefined): { validated: JsonObject; sources: Record<string, ParamSource> } | undefined {
    const at: DocPath = ['stages', name, 'params'];
    const resolved = stageRaw.params === undefined ? {} : this.attempt(() => this.resolveValue(at, stageRaw.params!));
    if (resolved === undefined) return undefined;
    if (!isObject(resolved)) {
      if (typeof stageRaw.params === 'string' && WHOLE_PARAM_REF.test(stageRaw.params)) {
        this.error(this.source.locate(at, 'value'), `the params of stage ${q(name)} must be a map, but ${q(stageRaw.params)} is ${describe(resolved)}`);
      }
      return undefined;
    }
    if (!entry) return undefined;
    let validator;
    try {
      validator = kindValidator(entry);
    } catch (error) {
      this.error(this.source.locate([...at.slice(0, 2), 'kind'], 'value'), `the params schema of kind ${q(entry.kind)} does not compile: ${(error as Error).message}`, 'fix schemas/stages/' + entry.kind + '.schema.json');
      return undefined;
    }
    const validated = structuredClone(resolved);
    const stage = `stage ${q(name)} (kind ${q(entry.kind)})`;
    const context: SchemaContext = {
      locate: (rel, part) => {
        const origin = this.originOf(at, rel);
        if (origin.via) return { location: this.source.locate(origin.via.ref, 'value'), note: ` (value from param ${q(origin.via.param)})` };
        return { location: this.source.locate(stageRaw.params === undefined ? ['stages', name] : origin.at, stageRaw.params === undefined ? 'key' : part), note: '' };
      },
      where: (rel) => (rel.length === 0 ? `the params of ${stage}` : `param ${q(paramPathText(rel))} of ${stage}`),
      name: (rel) => `param ${q(paramPathText(rel))} of ${stage}`,
      noun: 'param',
    };
    const result = checkAgainstSchema(validator, validated, context);
    if (result.diagnostics.length > 0) {
      this.diagnostics.push(...result.diagnostics);
      return undefined;
    }
    const sources: Record<string, ParamSource> = {};
    for (const leaf of leaves(resolved, [])) {
      const origin = this.originOf(at, leaf);
      const location = this.source.locate(origin.at, 'value');
      sources[paramPathText(leaf)] = { ...location, ...(origin.via ? { viaParam: origin.via.param } : {}) };
    }
    return { validated, sources };
  }

  private commandStage(name: string, stageRaw: JsonObject): { stage: ResolvedStage; config: JsonObject } | undefined {
    const base: DocPath = ['stages', name];
    let ok = true;
    const inputs: Record<string, InputRef> = {};
    const configDeps: JsonValue[] = [];
    if (Array.isArray(stageRaw.deps)) {
      stageRaw.deps.forEach((dep, i) => {
        if (typeof dep !== 'string') return;
        const ref = this.attempt(() => this.inputRef([...base, 'deps', i], dep, name));
        if (ref) {
          inputs[`dep${i}`] = ref.ref;
          configDeps.push(ref.config);
        } else ok = false;
      });
    }

    const outputs: Record<string, { type: 'file' | 'dir'; path?: string }> = {};
    const configOuts: JsonObject = {};
    if (isObject(stageRaw.outs)) {
      for (const [out, fileRaw] of Object.entries(stageRaw.outs)) {
        if (typeof fileRaw !== 'string') continue;
        const at: DocPath = [...base, 'outs', out];
        const file = this.attempt(() => this.resolveValue(at, fileRaw));
        if (typeof file !== 'string') {
          ok = false;
          continue;
        }
        const normal = path.posix.normalize(file.replace(/\/+$/, ''));
        if (path.isAbsolute(file) || normal === '.' || normal === '..' || normal.startsWith('../')) {
          this.error(this.source.locate(at, 'value'), `output ${q(out)} of stage ${q(name)} must be a relative file name inside the stage's output folder, not ${q(file)}`, 'e.g. report.txt, or plots/ for a folder');
          ok = false;
          continue;
        }
        outputs[out] = { type: file.endsWith('/') ? 'dir' : 'file', path: normal };
        configOuts[out] = escapeLiteral(file);
      }
    }

    let command: CommandPart[] | undefined;
    let commandText: string | undefined;
    if (typeof stageRaw.run === 'string') {
      const at: DocPath = [...base, 'run'];
      const run = this.attempt(() => this.resolveRefString(at, stageRaw.run as string, true));
      if (run) {
        commandText = run.config;
        command = [];
        let refIndex = 0;
        const refNames = new Map<string, string>();
        for (const part of run.parts) {
          if (part.type === 'text') command.push(part.text);
          else if (part.type === 'own') {
            if (!Object.hasOwn(outputs, part.output) && !(isObject(stageRaw.outs) && Object.hasOwn(stageRaw.outs, part.output))) {
              const declared = isObject(stageRaw.outs) ? Object.keys(stageRaw.outs) : [];
              this.error(this.source.locate(at, 'value'), `${q(part.raw)}: stage ${q(name)} declares no output ${q(part.output)}`, didYouMean(part.output, declared) ?? `declare it under outs: ${part.output}: <file name>`);
              ok = false;
            }
            command.push({ type: 'own-output', output: part.output });
          } else {
            const ref = this.attempt(() => this.stageRef(part, at, name));
            if (!ref) {
              ok = false;
              continue;
            }
            command.push(ref);
            const id = `${part.stage}\n${part.output}`;
            if (!refNames.has(id)) {
              const inputName = `run${refIndex++}`;
              refNames.set(id, inputName);
              inputs[inputName] = ref;
            }
          }
        }
      } else ok = false;
    }
    this.checkNeeds(name, stageRaw.needs);
    if (!ok || command === undefined || commandText === undefined) return undefined;

    const config: JsonObject = { ...stageRaw, run: commandText };
    if (stageRaw.deps !== undefined) config.deps = configDeps;
    if (stageRaw.outs !== undefined) config.outs = configOuts;
    return {
      stage: { name, kind: null, params: {}, inputs, outputs, needs: [], command, commandText, paramSources: {} },
      config,
    };
  }

  // ---- the DAG -------------------------------------------------------------------------------------

  private orderStages(): string[] {
    const upstreams = new Map([...this.edges].map(([stage, ups]) => [stage, [...ups.keys()]]));
    for (const cycle of findCycles(this.stageNames, upstreams)) {
      const steps = cycle.slice(0, -1).map((stage, i) => {
        const next = cycle[i + 1]!;
        return { stage, next, location: this.edges.get(stage)!.get(next)! };
      });
      const where = steps.map((s) => `${s.stage} → ${s.next} at ${formatLocation(s.location)}`).join('; ');
      this.error(steps[0]!.location, `dependency cycle: ${cycle.join(' → ')}`, `a stage cannot depend on itself, even indirectly: ${where}`);
    }
    return topologicalOrder(this.stageNames, upstreams);
  }

  private error(location: SourceLocation, message: string, hint?: string): void {
    this.diagnostics.push({ ...location, message, ...(hint ? { hint } : {}) });
  }
}

function getIn(root: JsonValue | undefined, at: DocPath): JsonValue | undefined {
  let node = root;
  for (const seg of at) {
    if (Array.isArray(node)) node = node[Number(seg)];
    else if (isObject(node)) node = Object.hasOwn(node, String(seg)) ? node[String(seg)] : undefined;
    else return undefined;
  }
  return node;
}

/** Paths of the leaves of a value (an empty map or list counts as a leaf). */
function leaves(value: JsonValue, at: (string | number)[]): (string | number)[][] {
  if (Array.isArray(value) && value.length > 0) return value.flatMap((v, i) => leaves(v, [...at, i]));
  if (isObject(value) && Object.keys(value).length > 0) return Object.entries(value).flatMap(([k, v]) => leaves(v, [...at, k]));
  return at.length === 0 ? [] : [at];
}

/** The snapshot must read back as the same pipeline: literal `${` in resolved strings is escaped. */
function escapeConfig(value: JsonValue): JsonValue {
  if (typeof value === 'string') return escapeLiteral(value);
  if (Array.isArray(value)) return value.map(escapeConfig);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeConfig(v)]));
  return value;
}

function describe(value: JsonValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return `a ${typeof value} (${JSON.stringify(value)})`;
}

function describeDocumentPath(rel: DocPath): string {
  if (rel.length === 0) return 'the pipeline';
  if (rel[0] === 'stages' && rel.length === 2) return `stage ${q(String(rel[1]))}`;
  if (rel[0] === 'stages' && rel.length === 3) return `${q(String(rel[2]))} of stage ${q(String(rel[1]))}`;
  return q(displayPath(rel));
}

function formatLocation(l: SourceLocation): string {
  return `${l.file}:${l.line}:${l.column}`;
}

function yamlHint(code: string): string | undefined {
  switch (code) {
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation and closing brackets or quotes';
    case 'TAB_AS_INDENT':
      return 'indent with spaces, not tabs';
    case 'MULTIPLE_DOCS':
      return 'a pipeline file holds one YAML document; remove the `---` separator';
    default:
      return undefined;
  }
}
