// Crash soak: random SIGKILLs of flow's whole process group, over a diamond DAG of command stages (with side
// effects) and over training (the Carvana pipeline, tiny settings), each followed by `flow resume` until the
// run is done and `flow verify --all` of every committed entry. Prints kills, recoveries, corrupt entries,
// leftovers (temp files, locks, processes), hangs and duplicate side effects. Goal: 0 corrupt / 0 hangs /
// 0 duplicates. Not part of the test suite (it takes minutes):
//   node dist/bench/crash-soak.js [--kills 100] [--train-kills 20] [--seed 1]
// --kills is the total; --train-kills of them hit training.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { repoRoot } from '../test/helpers/paths.js';
import { isPidAlive } from '../engine/process-info.js';
import { leftoverTemps } from '../test/engine-integrity/helpers.js';

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const KILLS = arg('kills', 100);
const TRAIN_KILLS = Math.min(KILLS, arg('train-kills', 20));
let seed = arg('seed', 1);
const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const HANG_MS = 120_000;

const flowEntry = path.join(repoRoot, 'dist', 'engine', 'cli-entry.js');

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  hung: boolean;
}

/** Starts flow in its own process group (as a shell job), optionally SIGKILLing the group after `killAfterMs`. */
function flow(cwd: string, args: string[], killAfterMs?: number): Promise<Outcome> {
  const child = spawn(process.execPath, [flowEntry, ...args], { cwd, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FLOW_CACHE: '', FLOW_RUNS: '' } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  let hung = false;
  const kill = killAfterMs === undefined ? undefined : setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), killAfterMs);
  const guard = setTimeout(() => {
    hung = true;
    signalGroup(child.pid!, 'SIGKILL');
  }, HANG_MS);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      if (kill) clearTimeout(kill);
      clearTimeout(guard);
      resolve({ code, signal, stderr, hung });
    }),
  );
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // gone
  }
}

// Each command logs `start <stage> <salt> <pid>` and `end ...` around its work, so overlapping instances of one
// stage (a survivor of a killed flow beside its re-run) are visible afterwards.
const DIAMOND = `name: soak
params: { salt: 0 }
stages:
  a: { run: "echo start a \${params.salt} $$ >> side.log; sleep 0.3; mkdir -p \${outs.d}; for i in 1 2 3; do echo \${params.salt}-$i > \${outs.d}/p$i; done; echo end a \${params.salt} $$ >> side.log", outs: { d: d/ } }
  b: { run: "echo start b \${params.salt} $$ >> side.log; sleep 0.4; cat \${stages.a.outs.d}/p1 > \${outs.o}; echo end b \${params.salt} $$ >> side.log", outs: { o: o.txt } }
  c: { run: "echo start c \${params.salt} $$ >> side.log; sleep 0.5; cat \${stages.a.outs.d}/p2 > \${outs.o}; echo end c \${params.salt} $$ >> side.log", outs: { o: o.txt } }
  d: { run: "echo start d \${params.salt} $$ >> side.log; sleep 0.2; cat \${stages.b.outs.o} \${stages.c.outs.o} > \${outs.o}; echo end d \${params.salt} $$ >> side.log", outs: { o: o.txt } }
`;

interface Tally {
  kills: number;
  recoveries: number;
  failedRecoveries: number;
  corrupt: number;
  leftovers: number;
  hangs: number;
  duplicates: number;
  repeated: number;
  orphans: number;
  /** Which stage was running at each kill (from the killed run's state.json). */
  killedIn: Map<string, number>;
  notes: string[];
}

function runningStages(runs: string): string {
  try {
    const pipeline = fs.readdirSync(runs)[0]!;
    const ids = fs.readdirSync(path.join(runs, pipeline)).filter((n) => !n.endsWith('.html')).sort();
    const state = JSON.parse(fs.readFileSync(path.join(runs, pipeline, ids.at(-1)!, 'state.json'), 'utf8')) as { stages: Record<string, { status: string }> };
    const names = Object.entries(state.stages).filter(([, s]) => s.status === 'running').map(([n]) => n);
    return names.length > 0 ? names.join('+') : 'between stages';
  } catch {
    return 'before state.json';
  }
}

/** Overlaps in side.log: an instance's `end` after a later instance of the same stage and salt started. */
function sideEffectAudit(file: string): { duplicates: number; repeated: number; unfinished: number[] } {
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
  const started = new Map<string, string[]>(); // stage+salt → pids in start order
  const ends = new Map<string, number>();
  const finished = new Set<string>();
  let duplicates = 0;
  for (const line of lines) {
    const [what, stage, salt, pid] = line.split(' ');
    const id = `${stage} ${salt}`;
    if (what === 'start') started.set(id, [...(started.get(id) ?? []), pid!]);
    else {
      const order = started.get(id) ?? [];
      if (order.indexOf(pid!) < order.length - 1) duplicates += 1; // a later instance started before this one ended
      ends.set(id, (ends.get(id) ?? 0) + 1);
      finished.add(pid!);
    }
  }
  const repeated = [...ends.values()].filter((n) => n > 1).length;
  const unfinished = [...started.values()].flat().filter((pid) => !finished.has(pid)).map(Number);
  return { duplicates, repeated, unfinished };
}

function list(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).map((name) => path.join(dir, name)) : [];
}

/** Temp files, temp folders, locks and trash left in the cache and runs folders after a completed run. */
function leftovers(cache: string, runs: string): string[] {
  const found = [...leftoverTemps(cache), ...leftoverTemps(runs), ...list(path.join(cache, 'tmp')), ...list(path.join(cache, 'trash')), ...list(path.join(cache, 'locks'))];
  for (const pipeline of list(runs)) for (const run of list(pipeline)) if (fs.existsSync(path.join(run, 'run.lock'))) found.push(path.join(run, 'run.lock'));
  return found;
}

async function cycle(t: Tally, home: string, cwd: string, args: string[], killMs: number, sideLog: string | null): Promise<void> {
  const cache = path.join(home, 'cache');
  const runs = path.join(home, 'runs');
  const common = ['--cache', cache, '--runs', runs];
  const first = await flow(cwd, [...args, ...common], killMs);
  if (first.signal === 'SIGKILL') {
    t.kills += 1;
    const where = runningStages(runs);
    t.killedIn.set(where, (t.killedIn.get(where) ?? 0) + 1);
  }
  if (first.hung) t.hangs += 1;
  if (sideLog) {
    // The reaper must stop every command of the killed process: it sends SIGTERM at once (allow for its start
    // on a loaded machine); only a command alive after that is an orphan.
    await new Promise((r) => setTimeout(r, 1500));
    const alive = sideEffectAudit(sideLog).unfinished.filter((pid) => isPidAlive(pid));
    if (alive.length > 0) {
      t.orphans += alive.length;
      t.notes.push(`orphaned command pids ${alive.join(', ')} after kill ${t.kills}`);
    }
  }
  let done = first.code === 0;
  for (let attempt = 0; !done && attempt < 3; attempt++) {
    const resumed = await flow(cwd, ['resume', ...common]);
    if (resumed.hung) {
      t.hangs += 1;
      t.notes.push(`resume hung after kill ${t.kills}: ${resumed.stderr.slice(-300)}`);
    }
    done = resumed.code === 0;
    if (!done) t.notes.push(`resume exit ${resumed.code} after kill ${t.kills}: ${resumed.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  }
  if (first.signal === 'SIGKILL') {
    if (done) t.recoveries += 1;
    else t.failedRecoveries += 1;
  }
  const verify = await flow(cwd, ['verify', '--all', ...common]);
  if (verify.code !== 0) {
    const damaged = (verify.stderr.match(/damaged/g) ?? []).length;
    t.corrupt += Math.max(1, damaged);
    t.notes.push(`verify exit ${verify.code} after kill ${t.kills}`);
  }
  const left = leftovers(cache, runs);
  if (left.length > 0) {
    t.leftovers += left.length;
    t.notes.push(`leftovers after kill ${t.kills}: ${left.slice(0, 3).join(', ')}${left.length > 3 ? ', …' : ''}`);
  }
}

async function main(): Promise<void> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-soak-'));
  const t: Tally = { kills: 0, recoveries: 0, failedRecoveries: 0, corrupt: 0, leftovers: 0, hangs: 0, duplicates: 0, repeated: 0, orphans: 0, killedIn: new Map(), notes: [] };
  const started = Date.now();
  const diamondKills = KILLS - TRAIN_KILLS;
  process.stderr.write(`crash soak in ${home}: ${diamondKills} kills over a diamond of command stages, ${TRAIN_KILLS} over training\n`);
  try {
    const diamond = path.join(home, 'diamond');
    fs.mkdirSync(diamond);
    fs.writeFileSync(path.join(diamond, 'p.yaml'), DIAMOND);
    const sideLog = path.join(diamond, 'side.log');
    // The diamond's critical path is ~1.4 s of commands plus flow's start; kills land anywhere in it.
    // Cycles go on until the wanted number of kills landed (a run that finished first is no kill).
    for (let i = 0; t.kills < diamondKills; i++) {
      await cycle(t, diamond, diamond, ['run', 'p.yaml', '--jobs', '2', '--set', `salt=${i}`], Math.round(100 + random() * 1700), sideLog);
      if ((i + 1) % 10 === 0) process.stderr.write(`  diamond: ${t.kills}/${diamondKills} kills, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    }
    const audit = sideEffectAudit(sideLog);
    t.duplicates += audit.duplicates;
    t.repeated += audit.repeated;

    const train = path.join(home, 'train');
    fs.mkdirSync(train);
    const pipeline = path.join(repoRoot, 'pipelines', 'carvana.yaml');
    const small = ['--set', 'train.epochs=3', '--set', 'train.input_size=[32,32]', '--set', 'train.filters=4', '--set', 'train.checkpoint_every_steps=2'];
    // A first run fills the cache up to training; each cycle then trains with a new seed and is killed in it.
    // (Run from the repository: the pipeline's raw data path, data/samples/carvana, is relative to it.)
    const warm = await flow(repoRoot, ['run', pipeline, ...small, '--cache', path.join(train, 'cache'), '--runs', path.join(train, 'runs')]);
    if (warm.code !== 0) throw new Error(`the training pipeline does not run: ${warm.stderr.slice(-500)}`);
    for (let i = 0; t.kills < KILLS; i++) {
      await cycle(t, train, repoRoot, ['run', pipeline, ...small, '--set', `train.seed=${100 + i}`], Math.round(1000 + random() * 4000), null);
      process.stderr.write(`  training: ${t.kills - diamondKills}/${TRAIN_KILLS} kills, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    }
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
  const rows: [string, string][] = [
    ['kills (SIGKILL of flow\'s process group)', String(t.kills)],
    ['recoveries (flow resume → done)', String(t.recoveries)],
    ['failed recoveries', String(t.failedRecoveries)],
    ['corrupt entries (flow verify --all after each cycle)', String(t.corrupt)],
    ['leftovers (temp files/folders, locks, trash after a completed run)', String(t.leftovers)],
    ['hangs (no exit within 120 s)', String(t.hangs)],
    ['orphaned commands (alive 1.5 s after the kill)', String(t.orphans)],
    ['duplicate side effects (two instances of one stage at once)', String(t.duplicates)],
    ['repeated completions (killed between a command\'s end and its commit: re-run)', String(t.repeated)],
    ['kills by running stage', [...t.killedIn].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')],
    ['wall time', `${((Date.now() - started) / 1000).toFixed(0)} s`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`\n${'measure'.padEnd(w)} | value\n${'-'.repeat(w)}-|------\n${rows.map(([a, b]) => `${a.padEnd(w)} | ${b}`).join('\n')}\n`);
  if (t.notes.length > 0) process.stdout.write(`\nnotes:\n${t.notes.map((n) => `  ${n}`).join('\n')}\n`);
  process.exitCode = t.corrupt + t.hangs + t.duplicates + t.orphans + t.failedRecoveries > 0 ? 1 : 0;
}

await main();
