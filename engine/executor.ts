// Runs a resolved pipeline: topological order, up to `jobs` independent stages at once; per stage compute the
// fingerprint (its inputs are done first) → cache hit? link it : run it (built-in stages in-process, command
// stages as child processes), commit outputs atomically to the cache, and keep state.json current.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { StageCatalog } from './catalog.js';
import type { JsonObject, PlatformProbe, StageContext, StageKind } from './stage.js';
import { dependentsOf, type InputRef, type ResolvedPipeline, type ResolvedStage } from './loader.js';
import { Cache, type EntryRecord } from './cache.js';
import { explainMiss, fingerprintKey, type Fingerprint } from './fingerprint.js';
import { hashPath } from './hashing.js';
import { writeJsonAtomic, writeFileAtomic } from './fs-util.js';
import { tryAcquire, type Lease } from './lease-lock.js';
import { AppendOnlyLog, removeAbandonedTemps } from './atomic-write.js';
import { UsageError } from './usage-error.js';
import {
  abandonedRunDirs,
  collectEnv,
  createRunDir,
  gitFacts,
  linkStageOutputs,
  listRuns,
  newStageState,
  readRunState,
  runLockPath,
  StateWriter,
  writeRunSnapshot,
  type RunState,
  type RunStatus,
  type StageState,
} from './run-folder.js';
import { installInterruptHandlers, INTERRUPT_EXIT_CODE, STOPPING_MESSAGE } from './signals.js';

export interface RunOptions {
  catalog: StageCatalog;
  cacheDir: string;
  runsDir: string;
  /** The flow installation (package.json, node_modules) for env.json. */
  flowRoot: string;
  jobs?: number;
  /** Re-run these stages and everything downstream, ignoring the cache. */
  from?: string[];
  /** Re-run exactly these stages (downstream re-runs only if their outputs' digests change). */
  force?: string[];
  /** Continue this run folder instead of creating a new one (`flow resume`). */
  resumeRunDir?: string;
  /** Where status lines go (default process.stderr). */
  stderr?: NodeJS.WritableStream;
  /** Install SIGINT/SIGTERM handlers (the CLI does; in-process tests use `abort`). */
  handleSignals?: boolean;
  /** External abort (tests): same as the first Ctrl+C. */
  abort?: AbortSignal;
}

export interface RunResult {
  runId: string;
  runDir: string;
  status: RunStatus;
  exitCode: number;
  state: RunState;
}

const COMMAND_KIND = 'command';

function refText(ref: InputRef): string {
  return ref.type === 'stage' ? `stages.${ref.stage}.outs.${ref.output}` : `path:${ref.path}`;
}

/** Every stage a stage waits for: explicit needs, stage inputs and refs inside a command. */
export function stageDependencies(stage: ResolvedStage): string[] {
  const deps = new Set(stage.needs);
  for (const ref of Object.values(stage.inputs)) if (ref.type === 'stage') deps.add(ref.stage);
  for (const part of stage.command ?? []) if (typeof part !== 'string' && part.type === 'stage') deps.add(part.stage);
  return [...deps];
}

/** `param train.lr: a → b` gains ` (params.train.lr)` when the value came through a pipeline param. */
function withParamOrigin(reason: string, stage: ResolvedStage): string {
  const m = /^param ([^:]+):/.exec(reason);
  if (!m || !m[1]!.startsWith(`${stage.name}.`)) return reason;
  const via = stage.paramSources[m[1]!.slice(stage.name.length + 1)]?.viaParam;
  return via ? `${reason} (from params.${via})` : reason;
}

function shortKey(key: string): string {
  return key.slice(0, 8) + '…';
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Declared outputs of a stage: name → type and path relative to the outs/ folder. */
function declaredOutputs(stage: ResolvedStage, catalog: StageCatalog): Record<string, { type: 'file' | 'dir'; path: string }> {
  const result: Record<string, { type: 'file' | 'dir'; path: string }> = {};
  if (stage.kind === null) {
    for (const [name, out] of Object.entries(stage.outputs)) {
      const rel = path.posix.normalize(out.path ?? name);
      if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`stage ${stage.name}: output ${name} path "${out.path}" must stay inside the stage's output folder`);
      result[name] = { type: out.type, path: rel };
    }
    return result;
  }
  const entry = catalog.get(stage.kind);
  if (!entry) throw new Error(`stage ${stage.name}: unknown stage kind ${stage.kind} (known: ${catalog.kinds().join(', ')}); rebuild with \`npm run build\``);
  for (const [name, out] of Object.entries(entry.outputs)) result[name] = { type: out.type, path: name };
  return result;
}

class Run {
  readonly cache: Cache;
  readonly stderr: NodeJS.WritableStream;
  readonly controller = new AbortController();
  readonly entries = new Map<string, EntryRecord>();
  state!: RunState;
  writer!: StateWriter;
  runDir!: string;
  log!: Logger;
  env!: JsonObject;
  private previousRunState: RunState | null | undefined;
  private gitDone: Promise<void> = Promise.resolve();
  private readonly forced = new Map<string, string>();
  private readonly keptFromResume = new Map<string, StageState>();
  /** This process's lease on the run folder: `flow runs` on any host tells a live run from a dead one by it. */
  runLease: Lease | null = null;

  constructor(readonly p: ResolvedPipeline, readonly opts: RunOptions) {
    this.cache = new Cache(opts.cacheDir);
    this.stderr = opts.stderr ?? process.stderr;
    for (const s of [...(opts.force ?? []), ...(opts.from ?? [])]) {
      if (!p.stages[s]) throw new UsageError(`no stage named "${s}" in ${p.file} (stages: ${p.order.join(', ')})`);
    }
    for (const s of opts.force ?? []) this.forced.set(s, `forced (--force ${s})`);
    for (const s of opts.from ?? []) {
      this.forced.set(s, `forced (--from ${s})`);
      for (const d of dependentsOf(p, [s])) if (d !== s) this.forced.set(d, `forced (downstream of --from ${s})`);
    }
    if (opts.abort) {
      if (opts.abort.aborted) this.controller.abort();
      else opts.abort.addEventListener('abort', () => this.controller.abort(), { once: true });
    }
  }

  async start(): Promise<void> {
    const p = this.p;
    let runId: string;
    // Folders of runs killed before their first state.json: invisible, never resumable; cleared here.
    for (const dir of abandonedRunDirs(this.opts.runsDir, p.name)) fs.rmSync(dir, { recursive: true, force: true });
    if (this.opts.resumeRunDir) {
      this.runDir = this.opts.resumeRunDir;
      const old = readRunState(this.runDir);
      if (!old) throw new Error(`${this.runDir}: no state.json; not a run folder`);
      this.runLease = tryAcquire(runLockPath(this.runDir), { purpose: `run ${old.runId}` });
      if (this.runLease === null) throw new UsageError(`run ${old.runId} is still running (its flow process holds ${runLockPath(this.runDir)}); wait for it or stop it first`);
      removeAbandonedTemps(this.runDir); // half-writes of the process that was killed
      runId = old.runId;
      for (const [name, s] of Object.entries(old.stages)) if (s.status === 'done') this.keptFromResume.set(name, s);
      this.state = { ...old, status: 'running', pid: process.pid, host: os.hostname(), ended: null, order: p.order, stages: {} };
    } else {
      ({ runId, runDir: this.runDir } = createRunDir(this.opts.runsDir, p.name));
      try {
        this.runLease = tryAcquire(runLockPath(this.runDir), { purpose: `run ${runId}` });
      } catch (err) {
        // Not even a lock file fits (disk full): leave no run folder that looks like a run.
        fs.rmSync(this.runDir, { recursive: true, force: true });
        throw err;
      }
      this.state = {
        runId,
        pipeline: p.name,
        file: path.resolve(p.file),
        baseDir: path.resolve(p.baseDir),
        overrides: p.overrides,
        cacheDir: path.resolve(this.opts.cacheDir),
        status: 'running',
        pid: process.pid,
        host: os.hostname(),
        started: new Date().toISOString(),
        ended: null,
        order: p.order,
        stages: {},
      };
    }
    for (const name of p.order) this.state.stages[name] = newStageState();
    this.writer = new StateWriter(this.runDir, this.state, (err) => this.line(`flow: error: ${err.message}`));
    try {
      if (!this.opts.resumeRunDir) {
        const { stringify } = await import('yaml');
        writeRunSnapshot(this.runDir, stringify(p.config), p.overrides);
      }
      this.writer.writeNow();
      // env.json is written once git has answered (a few ms, beside the first stages): one write, not two.
      this.env = collectEnv(this.opts.flowRoot, p.params);
    } catch (err) {
      this.runLease?.release();
      // A new run that cannot write its folder (disk full) leaves none behind; a resumed one keeps its old state.
      if (!this.opts.resumeRunDir) fs.rmSync(this.runDir, { recursive: true, force: true });
      throw new Error(`run ${runId} could not start: ${(err as Error).message}`, { cause: err });
    }
    this.gitDone = gitFacts(p.baseDir)
      .then((git) => {
        this.env.git = git;
        writeJsonAtomic(path.join(this.runDir, 'env.json'), this.env);
      })
      .catch((err: unknown) => this.line(`flow: warning: could not record git facts in env.json: ${(err as Error).message}`));
    const pino = (await import('pino')).default;
    // A log write that fails (disk full) is said once and logging stops; it never throws into a stage.
    const logFile = new AppendOnlyLog(path.join(this.runDir, 'log.ndjson'), (err) => this.line(`flow: warning: ${err.message}; the log stops here`));
    this.log = pino({ base: { run: runId, pipeline: p.name } }, logFile);
    this.log.info({ resume: Boolean(this.opts.resumeRunDir), overrides: p.overrides }, 'run started');
  }

  line(text: string): void {
    this.stderr.write(text + '\n');
  }

  /** state.json after a stage ends: a failed write (disk full) is said, and the next write tries again. */
  writeStateOrWarn(): boolean {
    try {
      this.writer.writeNow();
      return true;
    } catch (err) {
      this.line(`flow: error: ${(err as Error).message}`);
      this.log?.error({ err }, 'state.json not written');
      return false;
    }
  }

  /** The latest earlier run of this pipeline (for explaining misses), read once. */
  previousRun(): RunState | null {
    if (this.previousRunState === undefined) {
      const all = listRuns(this.opts.runsDir, this.p.name);
      const mine = all.findIndex((r) => r.runId === this.state.runId);
      const earlier = mine >= 0 ? all.slice(0, mine) : all;
      this.previousRunState = null;
      for (let i = earlier.length - 1; i >= 0 && this.previousRunState === null; i--) {
        try {
          this.previousRunState = readRunState(earlier[i]!.runDir) ?? null;
        } catch {
          this.previousRunState = null;
        }
      }
    }
    return this.previousRunState;
  }

  previousFingerprint(stageName: string): Fingerprint | undefined {
    const key = this.previousRun()?.stages[stageName]?.key;
    const fromRun = key ? this.cache.readFingerprint(key) : undefined;
    return fromRun ?? this.cache.readIndex(this.p.name, stageName)?.fingerprint;
  }

  absInput(ref: InputRef): string {
    if (ref.type === 'path') return path.resolve(this.p.baseDir, ref.path);
    const entry = this.entries.get(ref.stage);
    const out = entry?.outputs[ref.output];
    if (!entry || !out) throw new Error(`input ${refText(ref)} is not available (stage ${ref.stage} has no output ${ref.output})`);
    return this.cache.outputPath(entry.key, out);
  }

  async inputDigest(ref: InputRef, stageName: string, inputName: string): Promise<string> {
    if (ref.type === 'stage') {
      const out = this.entries.get(ref.stage)?.outputs[ref.output];
      if (!out) throw new Error(`stage ${stageName}: input ${inputName} refers to ${refText(ref)}, which stage ${ref.stage} did not produce`);
      return out.digest;
    }
    const abs = path.resolve(this.p.baseDir, ref.path);
    try {
      return await hashPath(abs, this.cache.statCache);
    } catch (err) {
      const where = this.p.overrides.length > 0 ? `${this.p.file} or in the --set overrides (${this.p.overrides.join(' ')})` : this.p.file;
      throw new Error(`stage ${stageName}: input ${inputName} (${ref.path}): ${(err as Error).message}; create it or fix the path in ${where}`);
    }
  }

  async fingerprint(stage: ResolvedStage): Promise<Fingerprint> {
    const inputs: Record<string, string> = {};
    for (const [name, ref] of Object.entries(stage.inputs)) {
      // Command stages' inputs are named dep0/run0 by position; key them by what they refer to instead, so a
      // reordered deps list keeps its key and a miss names the file (paths relative to baseDir: no absolute
      // paths in keys).
      const keyName = stage.kind === null ? (ref.type === 'stage' ? refText(ref) : path.relative(this.p.baseDir, ref.path) || '.') : name;
      inputs[keyName] = await this.inputDigest(ref, stage.name, keyName);
    }
    // (The loader lists a command's deps and the refs in its text among the inputs: dep0.., run0..)
    const outputs = declaredOutputs(stage, this.opts.catalog);
    if (stage.kind === null) {
      return { fingerprintVersion: 1, kind: COMMAND_KIND, version: '1', codeDigest: '', codeFiles: {}, command: stage.commandText ?? '', params: stage.params, outputs, inputs, platform: {} };
    }
    const entry = this.opts.catalog.get(stage.kind)!;
    const platform = entry.platformModule ? await this.platformFacts(stage, entry.platformModule) : {};
    return { fingerprintVersion: 1, kind: entry.kind, version: entry.version, codeDigest: entry.codeDigest, codeFiles: entry.codeFiles, command: null, params: stage.params, outputs, inputs, platform };
  }

  /** The kind's platform probe (StageKind.platform): facts such as the tensor backend that will run. */
  async platformFacts(stage: ResolvedStage, modulePath: string): Promise<JsonObject> {
    const inputs: Record<string, string> = {};
    for (const [inputName, ref] of Object.entries(stage.inputs)) inputs[inputName] = this.absInput(ref);
    try {
      const mod = (await import(pathToFileURL(modulePath).href)) as { platformFacts?: PlatformProbe };
      if (typeof mod.platformFacts !== 'function') throw new Error(`${modulePath} exports no platformFacts function`);
      return await mod.platformFacts({ params: stage.params, inputs });
    } catch (err) {
      throw new Error(`stage ${stage.name}: cannot tell its platform: ${(err as Error).message}`, { cause: err });
    }
  }

  linkStage(name: string, entry: EntryRecord): void {
    linkStageOutputs(this.runDir, name, path.join(this.cache.entryDir(entry.key), 'outs'));
  }

  /**
   * A failure that names a file inside a cache entry: which stage's output it is, so the user re-runs the
   * stage that really owns the file (a hard-linked shard lives in several entries; the path says which).
   */
  ownerHint(message: string): string {
    const entriesDir = path.join(this.cache.dir, 'entries') + path.sep;
    const at = message.indexOf(entriesDir);
    if (at < 0) return message;
    const key = message.slice(at + entriesDir.length).split(/[/\\\s:]/)[0]!;
    const owner = Object.entries(this.state.stages).find(([, s]) => s.key === key)?.[0] ?? this.cache.readEntry(key)?.stage;
    if (!owner) return message;
    return `${message} [that file is in the cache entry of stage ${owner} (key ${shortKey(key)}; its files may be hard links shared with the stage that first wrote them): \`flow run --force ${owner}\` recomputes it; \`flow verify --all\` finds every damaged entry]`;
  }

  async runStage(name: string): Promise<void> {
    const stage = this.p.stages[name]!;
    const st = this.state.stages[name]!;
    const fp = await this.fingerprint(stage);
    const key = await fingerprintKey(fp);
    st.key = key;
    const forcedReason = this.forced.get(name);
    const kept = this.keptFromResume.get(name);
    let damaged: string | undefined;
    if (forcedReason === undefined) {
      const found = await this.cache.findReusable(key);
      if (found && 'damaged' in found) damaged = found.damaged;
      const hit = found && !('damaged' in found) ? found : undefined;
      if (hit) {
        this.entries.set(name, hit);
        this.linkStage(name, hit);
        if (kept && kept.key === key) {
          Object.assign(st, kept);
          this.line(`✔ ${name}  done (kept from this run, key ${shortKey(key)})`);
        } else {
          Object.assign(st, { status: 'done', cached: true, reason: [], durationMs: 0, started: new Date().toISOString(), ended: new Date().toISOString() });
          this.line(`✔ ${name}  cached (key ${shortKey(key)})`);
        }
        this.log.info({ stage: name, key, cached: true }, 'cache hit');
        this.writer.changed();
        return;
      }
    }
    // A miss: say why, then compute under the key's lock (another process may be computing it right now).
    const prev = this.previousFingerprint(name);
    const reasons = forcedReason ? [forcedReason] : damaged ? [damaged] : prev ? explainMiss(prev, fp, name).map((r) => withParamOrigin(r, stage)) : ['new: no earlier run'];
    // Another flow process on the same cache may commit this key while we wait for its lock: use its entry.
    const adoptTheirs = async (): Promise<boolean> => {
      const theirs = await this.cache.findReusable(key);
      if (!theirs || 'damaged' in theirs) return false;
      this.entries.set(name, theirs);
      this.linkStage(name, theirs);
      Object.assign(st, { status: 'done', cached: true, reason: ['computed by another flow process'], durationMs: 0 });
      this.line(`✔ ${name}  cached (computed by another process, key ${shortKey(key)})`);
      this.writer.changed();
      return true;
    };
    let lease: Lease | null = null;
    while (lease === null) {
      lease = await this.cache.lock(key, {
        stillNeeded: () => forcedReason !== undefined || this.cache.readEntry(key) === undefined,
        signal: this.controller.signal,
        purpose: `stage ${name} of run ${this.state.runId}`,
        onWait: (message) => this.line(`… ${name}  ${message}`),
      });
      // No lease: the holder committed the entry (use it), or we were interrupted (the stage stays pending);
      // an entry that fails its check was moved aside by adoptTheirs, so waiting again computes it.
      if (lease === null && ((await adoptTheirs()) || this.controller.signal.aborted)) return;
    }
    let tempDir: string | null = null;
    try {
      if (forcedReason === undefined && (await adoptTheirs())) return;
      const checkpoint = this.cache.checkpointInfo(key);
      if (checkpoint) reasons.push(`resuming interrupted checkpoint from run ${checkpoint.run}`);
      else if (reasons.length === 0) reasons.push('same key as before, but no finished cache entry (it was interrupted, failed or removed)');
      const checkpointDir = this.cache.prepareCheckpoint(key, fp, { run: this.state.runId, stage: name });
      this.cache.writeIndex(this.p.name, name, { key, run: this.state.runId, updated: new Date().toISOString(), fingerprint: fp });
      tempDir = this.cache.makeTemp(key);
      const started = Date.now();
      Object.assign(st, { status: 'running', cached: false, reason: reasons, started: new Date(started).toISOString(), ended: null, durationMs: null, error: null, resumedFromCheckpoint: checkpoint !== undefined });
      this.writer.writeNow();
      this.line(`▶ ${name}  running: ${reasons.join('; ')}`);
      this.log.info({ stage: name, key, reasons }, 'stage started');

      const outputs = declaredOutputs(stage, this.opts.catalog);
      const outs: Record<string, string> = {};
      for (const [outName, out] of Object.entries(outputs)) {
        outs[outName] = path.join(tempDir, 'outs', out.path);
        if (out.type === 'dir') fs.mkdirSync(outs[outName]!, { recursive: true });
      }
      const stageLog = this.log.child({ stage: name });
      let outcome: 'done' | 'interrupted';
      let summary: JsonObject | undefined;
      if (stage.kind === null) {
        const { runCommandStage } = await import('./command-stage.js');
        outcome = await runCommandStage({
          stageName: name,
          parts: stage.command ?? [],
          baseDir: this.p.baseDir,
          resolveRef: (ref) => this.absInput(ref),
          outs,
          signal: this.controller.signal,
          log: stageLog,
          stderr: this.stderr,
          recordFile: this.cache.commandRecordFile(key),
        });
      } else {
        const entry = this.opts.catalog.get(stage.kind)!;
        const mod = (await import(pathToFileURL(entry.modulePath).href)) as { default: StageKind<JsonObject> };
        const inputs: Record<string, string> = {};
        for (const [inputName, ref] of Object.entries(stage.inputs)) inputs[inputName] = this.absInput(ref);
        const ctx: StageContext<JsonObject> = {
          stageName: name,
          params: stage.params,
          inputs,
          outs,
          workDir: path.join(tempDir, 'work'),
          checkpointDir,
          platform: fp.platform,
          signal: this.controller.signal,
          log: stageLog,
          print: (text: string) => {
            this.stderr.write(`[${name}] ${text}\n`);
            stageLog.info(text);
          },
          interactive: Boolean((process.stderr as NodeJS.WriteStream).isTTY),
          recordEnv: (facts: JsonObject) => {
            const stages = this.env.stages as JsonObject;
            stages[name] = { ...((stages[name] as JsonObject | undefined) ?? {}), ...facts };
            writeJsonAtomic(path.join(this.runDir, 'env.json'), this.env);
          },
        };
        const result = await mod.default.run(ctx);
        outcome = result.status;
        summary = result.summary;
      }
      const durationMs = Date.now() - started;
      if (outcome === 'interrupted') {
        Object.assign(st, { status: 'interrupted', ended: new Date().toISOString(), durationMs });
        this.line(`■ ${name}  interrupted after ${formatSeconds(durationMs)} (checkpoint kept)`);
        this.log.info({ stage: name, key }, 'stage interrupted');
        return;
      }
      const entry = await this.cache.commit(tempDir, fp, key, { stage: name, pipeline: this.p.name, durationMs }, outputs, forcedReason !== undefined);
      tempDir = null;
      this.entries.set(name, entry);
      this.linkStage(name, entry);
      Object.assign(st, { status: 'done', ended: new Date().toISOString(), durationMs, ...(summary ? { summary } : {}) });
      this.line(`✔ ${name}  done in ${formatSeconds(durationMs)}`);
      this.log.info({ stage: name, key, durationMs }, 'stage done');
    } catch (err) {
      // Built-in stages name the files they fail on; a command's own text is full of entry paths, so not there.
      const message = stage.kind === null ? (err as Error).message : this.ownerHint((err as Error).message);
      Object.assign(st, { status: 'failed', ended: new Date().toISOString(), error: message });
      this.line(`✖ ${name}  failed: ${message}`);
      this.log.error({ stage: name, key, err }, 'stage failed');
    } finally {
      if (tempDir !== null) this.cache.discardTemp(tempDir);
      lease.release();
      this.writeStateOrWarn();
    }
  }

  async execute(): Promise<void> {
    const jobs = Math.max(1, this.opts.jobs ?? 1);
    const deps = new Map(this.p.order.map((n) => [n, stageDependencies(this.p.stages[n]!)]));
    const waiting = new Set(this.p.order);
    const running = new Map<string, Promise<void>>();
    for (;;) {
      if (!this.controller.signal.aborted) {
        for (const name of this.p.order) {
          if (running.size >= jobs) break;
          if (!waiting.has(name)) continue;
          if (!deps.get(name)!.every((d) => this.state.stages[d]?.status === 'done')) continue;
          waiting.delete(name);
          const task = this.runStage(name)
            .catch((err: unknown) => {
              const st = this.state.stages[name]!;
              Object.assign(st, { status: 'failed', error: (err as Error).message, ended: new Date().toISOString() });
              this.line(`✖ ${name}  failed: ${(err as Error).message}`);
            })
            .finally(() => running.delete(name));
          running.set(name, task);
        }
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
  }

  async finish(): Promise<RunResult> {
    await this.gitDone;
    const statuses = Object.values(this.state.stages).map((s) => s.status);
    let status: RunStatus = 'done';
    if (statuses.includes('failed')) status = 'failed';
    else if (statuses.includes('interrupted') || this.controller.signal.aborted || statuses.some((s) => s !== 'done')) status = 'interrupted';
    this.state.status = status;
    this.state.ended = new Date().toISOString();
    if (status === 'done' && this.p.metrics) {
      try {
        writeFileAtomic(path.join(this.runDir, 'metrics.json'), fs.readFileSync(this.absInput(this.p.metrics)));
      } catch (err) {
        this.line(`flow: warning: could not copy metrics ${refText(this.p.metrics)}: ${(err as Error).message}`);
      }
    }
    const stateWritten = this.writeStateOrWarn();
    try {
      this.cache.statCache.save();
    } catch (err) {
      this.line(`flow: warning: could not save the stat cache (only costs re-reading unchanged files next time): ${(err as Error).message}`);
    }
    try {
      // report.html is rebuilt from the run folder alone (engine/report.ts); a broken report never fails a run.
      const { writeRunReport } = await import('./report.js');
      writeRunReport(this.runDir);
    } catch (err) {
      this.line(`flow: warning: could not write report.html: ${(err as Error).message}`);
    }
    this.log.info({ status }, 'run ended');
    this.runLease?.release();
    const exitCode = !stateWritten ? 1 : status === 'done' ? 0 : status === 'failed' ? 1 : INTERRUPT_EXIT_CODE;
    return { runId: this.state.runId, runDir: this.runDir, status, exitCode, state: this.state };
  }
}

/** Runs (or resumes) a pipeline; returns the run's final state and the CLI exit code (0, 1 failed, 130 interrupted). */
export async function runPipeline(p: ResolvedPipeline, opts: RunOptions): Promise<RunResult> {
  const run = new Run(p, opts);
  await run.start();
  let uninstall = (): void => {};
  let stopCommands: (() => void) | undefined;
  if (opts.handleSignals) {
    // Loaded now (it is light) so the synchronous second-signal handler can stop running commands.
    stopCommands = (await import('./command-stage.js')).stopAllCommands;
    uninstall = installInterruptHandlers(run.controller, {
      onFirst: () => run.line(STOPPING_MESSAGE),
      onSecond: () => {
        run.state.status = 'interrupted';
        run.state.ended = new Date().toISOString();
        for (const s of Object.values(run.state.stages)) if (s.status === 'running') s.status = 'interrupted';
        try {
          run.writer.writeNow();
        } catch {
          // exiting anyway; the run reads as interrupted once its lease is gone
        }
        stopCommands?.();
        run.runLease?.release();
      },
    });
  }
  try {
    await run.execute();
  } finally {
    uninstall();
  }
  return await run.finish();
}

