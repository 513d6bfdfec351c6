// Engine benchmarks (prints a table): fully cached 12-stage re-run as a whole `flow run` process beside
// `node -e 0`; a generated 1,000-stage DAG (planning time, fully cached re-run); hashing throughput on a
// 1 GB file beside `sha256sum` and `cat > /dev/null`. Run: `node --import tsx bench/engine.ts` or compiled.
// FLOW_BENCH_HASH_MB sets the hashed file's size (default 1024); FLOW_BENCH_PARTS picks parts (cached,reuse,dag,hash).
// Every cache hit verifies its entry against its manifest (sizes, and digests through the stat cache): the
// cached rows include that check, and the `reuse` part shows what it costs on an entry of 2,000 files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { repoRoot } from '../test/helpers/paths.js';
import { loadPipeline } from '../engine/loader.js';
import { runPipeline } from '../engine/executor.js';
import { loadCatalog } from '../engine/registry.js';
import { hashFileContent } from '../engine/hashing.js';

const rows: [string, string, string][] = [];
function row(what: string, value: string, note = ''): void {
  rows.push([what, value, note]);
  process.stderr.write(`  ${what}: ${value} ${note}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function wall(cmd: string, args: string[], cwd: string, shell = false): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], shell });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.toString().slice(-500)}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** The CLI as a user starts it: bin/flow.js when compiled, else the source entry through tsx. */
function flowArgv(): { argv: string[]; how: string } {
  if (fs.existsSync(path.join(repoRoot, 'dist', 'engine', 'cli.js'))) return { argv: [path.join(repoRoot, 'bin', 'flow.js')], how: 'bin/flow.js (dist)' };
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return { argv: ['--import', tsx, path.join(repoRoot, 'engine', 'cli-entry.ts')], how: 'engine/cli-entry.ts via tsx (not built: slower start)' };
}

function commandPipeline(name: string, stages: number, deps: (i: number) => number[]): string {
  const lines = [`name: ${name}`, 'params: { salt: 1 }', 'stages:'];
  for (let i = 0; i < stages; i++) {
    const refs = deps(i).map((d) => ` \${stages.s${d}.outs.o}`).join('');
    lines.push(`  s${i}: { run: "echo ${i} \${params.salt} > \${outs.o}${refs ? `; cat${refs} >> \${outs.o}` : ''}", outs: { o: o.txt } }`);
  }
  return lines.join('\n') + '\n';
}

async function benchCachedCli(dir: string): Promise<void> {
  const { argv, how } = flowArgv();
  fs.writeFileSync(path.join(dir, 'twelve.yaml'), commandPipeline('twelve', 12, (i) => (i === 0 ? [] : [i - 1])));
  wall(process.execPath, [...argv, 'run', 'twelve.yaml'], dir); // fill the cache
  const runs: number[] = [];
  const nodes: number[] = [];
  for (let k = 0; k < 7; k++) {
    nodes.push(wall(process.execPath, ['-e', '0'], dir));
    runs.push(wall(process.execPath, [...argv, 'run', 'twelve.yaml'], dir));
  }
  const r = median(runs);
  const n = median(nodes);
  row('12-stage fully cached `flow run` (wall, median of 7; each hit verified)', `${r.toFixed(0)} ms`, `goal ≤ 500 ms; ${how}`);
  row('`node -e 0` (wall, median of 7)', `${n.toFixed(0)} ms`, `flow run = ${(r / n).toFixed(1)}× node start`);
}

async function benchReuseVerification(dir: string): Promise<void> {
  const { argv } = flowArgv();
  const many = path.join(dir, 'many');
  fs.mkdirSync(many);
  const text = (files: number): string =>
    `name: many${files}\nstages:\n  make: { run: "mkdir -p \${outs.d} && cd \${outs.d} && for i in $(seq 1 ${files}); do echo $i > f$i; done", outs: { d: d/ } }\n  use: { run: "ls \${stages.make.outs.d} | wc -l > \${outs.n}", outs: { n: n.txt } }\n`;
  for (const files of [1, 2000]) fs.writeFileSync(path.join(many, `m${files}.yaml`), text(files));
  const timeOf = (files: number): number => {
    wall(process.execPath, [...argv, 'run', `m${files}.yaml`], many);
    const xs: number[] = [];
    for (let k = 0; k < 5; k++) xs.push(wall(process.execPath, [...argv, 'run', `m${files}.yaml`], many));
    return median(xs);
  };
  const one = timeOf(1);
  const big = timeOf(2000);
  row('2-stage fully cached `flow run`, entry of 1 file (wall, median of 5)', `${one.toFixed(0)} ms`);
  row('  same, entry of 2,000 files (each verified on reuse)', `${big.toFixed(0)} ms`, `${(((big - one) / 2000) * 1000).toFixed(0)} µs per verified file`);
}

async function benchBigDag(dir: string): Promise<void> {
  const catalog = loadCatalog(repoRoot);
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const text = commandPipeline('thousand', 1000, (i) => (i < 2 ? [] : [Math.floor(rand() * i), Math.floor(rand() * i)].filter((d, j, a) => a.indexOf(d) === j)));
  const file = path.join(dir, 'thousand.yaml');
  fs.writeFileSync(file, text);
  const t0 = performance.now();
  const p = loadPipeline(file, { baseDir: dir, catalog });
  const planMs = performance.now() - t0;
  row('1,000-stage DAG: planning (load + validate + order)', `${planMs.toFixed(0)} ms`);
  const sink = { write: () => true } as unknown as NodeJS.WritableStream;
  const opts = { catalog, cacheDir: path.join(dir, '.flow', 'cache'), runsDir: path.join(dir, 'runs'), flowRoot: repoRoot, stderr: sink, jobs: os.cpus().length };
  const t1 = performance.now();
  const first = await runPipeline(p, opts);
  if (first.status !== 'done') throw new Error(`1,000-stage first run: ${first.status}`);
  row('1,000-stage DAG: first run (1,000 shell commands)', `${((performance.now() - t1) / 1000).toFixed(1)} s`, `--jobs ${opts.jobs}`);
  const t2 = performance.now();
  const again = await runPipeline(loadPipeline(file, { baseDir: dir, catalog }), opts);
  const cachedMs = performance.now() - t2;
  if (!Object.values(again.state.stages).every((s) => s.cached)) throw new Error('1,000-stage re-run was not fully cached');
  row('1,000-stage DAG: fully cached re-run (in-process, incl. load)', `${cachedMs.toFixed(0)} ms`, 'goal ≤ 2,000 ms');
  const { argv } = flowArgv();
  row('1,000-stage DAG: fully cached `flow run` process (wall)', `${wall(process.execPath, [...argv, 'run', 'thousand.yaml'], dir).toFixed(0)} ms`);
}

async function benchHashing(dir: string): Promise<void> {
  const mb = Number(process.env.FLOW_BENCH_HASH_MB ?? 1024);
  const file = path.join(dir, 'big.bin');
  // Random-ish content (not zeros: some filesystems store zero pages sparsely).
  const chunk = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const fd = fs.openSync(file, 'w');
  for (let written = 0; written < mb * 1024 * 1024; written += chunk.length) fs.writeSync(fd, chunk);
  fs.closeSync(fd);
  const bytes = fs.statSync(file).size;
  wall('cat', [file], dir); // warm the page cache so every reader sees the same source
  const catMs = wall('sh', ['-c', `cat '${file}' > /dev/null`], dir);
  const t = performance.now();
  await hashFileContent(file);
  const ourMs = performance.now() - t;
  let shaMs: number | null = null;
  try {
    execFileSync('sha256sum', ['--version'], { stdio: 'ignore' });
    shaMs = wall('sha256sum', [file], dir);
  } catch {
    shaMs = null;
  }
  const rate = (ms: number): string => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
  row(`hash ${(bytes / 2 ** 20).toFixed(0)} MiB: flow xxhash128 (hash-wasm, streaming)`, rate(ourMs), `${ourMs.toFixed(0)} ms; goal ≥ 1,000 MB/s`);
  if (shaMs !== null) row('  same file: sha256sum', rate(shaMs), `flow is ${(shaMs / ourMs).toFixed(1)}× faster`);
  row('  same file: cat > /dev/null', rate(catMs), `flow at ${((catMs / ourMs) * 100).toFixed(0)}% of cat's speed`);
  fs.rmSync(file);
}

async function benchMain(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-bench-engine-'));
  process.stderr.write(`engine bench in ${dir} (${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)})\n`);
  try {
    const parts = new Set((process.env.FLOW_BENCH_PARTS ?? 'cached,reuse,dag,hash').split(','));
    if (parts.has('cached')) await benchCachedCli(dir);
    if (parts.has('reuse')) await benchReuseVerification(dir);
    if (parts.has('dag')) await benchBigDag(dir);
    if (parts.has('hash')) await benchHashing(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length), ['measure', 'value', 'note'][c]!.length));
  const fmt = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  process.stdout.write(`\n${fmt(['measure', 'value', 'note'])}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}\n${rows.map(fmt).join('\n')}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await benchMain();
export { benchMain };
