// Per-case comparison and the diff page from run folders built here file by file (state.json, config.yaml,
// metrics.json shaped like evaluate's for three BraTS regions, PNG panels written with sharp): tables found by
// shape, cases matched by id, lower-is-better signing, definitions that differ, case ids in file names, the
// `flow diff --html` page and its CLI argument, `flow runs` columns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { makeTempDir } from '../helpers/paths.js';
import { compareCases, definitionOf, findCaseTables, improvementOf, lowerIsBetter, mostChangedCases, nameShowsCase, renderDiffHtml } from '../../engine/compare.js';
import { clip, diffRuns, formatDiff, formatRunsTable, keyMetrics, listRunSummaries } from '../../engine/inspect.js';
import { fileType, renderRunReport } from '../../engine/report.js';
import type { JsonObject } from '../../engine/stage.js';
import { runCli, makeProject } from './helpers.js';

const REGIONS = ['WT', 'TC', 'ET'] as const;
const CASES = ['BraTS19_A_1', 'BraTS19_A_10', 'BraTS19_B_2'];

const DEFINITIONS: JsonObject = {
  dice: 'per case 2*TP / (2*TP + FP + FN)',
  hd95: 'per case 95th percentile of surface distances',
  hd95_units: 'mm',
  regions: { WT: [1, 2, 4], TC: [1, 4], ET: [4] },
  threshold: 0.5,
};

/** metrics.json as evaluate writes it: top-level `WT_dice`..., `regions.<R>.per_case`, `definitions`. */
function bratsMetrics(dice: (region: string, id: string) => number, hd95: (region: string, id: string) => number, definitions: JsonObject = DEFINITIONS, ids = CASES): JsonObject {
  const metrics: JsonObject = { dataset: 'brats' };
  const regions: JsonObject = {};
  for (const r of REGIONS) {
    const perCase = ids.map((id) => ({ id, dice: dice(r, id), hd95: hd95(r, id), tp: 10, fp: 2, fn: 3, tn: 100 }));
    const mean = (k: 'dice' | 'hd95'): number => perCase.reduce((a, c) => a + c[k], 0) / perCase.length;
    metrics[`${r}_dice`] = mean('dice');
    metrics[`${r}_hd95`] = mean('hd95');
    regions[r] = { labels: [1], mean: { dice: mean('dice'), hd95: mean('hd95') }, cases: perCase.length, per_case: perCase };
  }
  metrics.regions = regions;
  metrics.definitions = definitions;
  return metrics;
}

const base = (r: string, id: string): number => 0.5 + 0.1 * REGIONS.indexOf(r as (typeof REGIONS)[number]) + 0.01 * CASES.indexOf(id);

test('case tables are found by shape and named by the path segment before the array', () => {
  const tables = findCaseTables(bratsMetrics(base, () => 3));
  assert.deepEqual(tables.map((t) => [t.path, t.group]), REGIONS.map((r) => [`regions.${r}.per_case`, r]));
  assert.deepEqual(tables[0]!.fields, ['dice', 'hd95', 'tp', 'fp', 'fn', 'tn']);
  assert.deepEqual([...tables[0]!.cases.keys()], CASES);
  // Arrays without ids, mixed arrays and the definitions block are no case tables.
  assert.deepEqual(findCaseTables({ curve: [1, 2, 3], rows: [{ name: 'x', v: 1 }], mixed: [{ id: 'a', v: 1 }, 3], definitions: { t: [{ id: 'q', v: 1 }] } }), []);
  assert.deepEqual(findCaseTables({ per_case: [{ id: 7, loss: 0.5 }] }).map((t) => [t.path, t.group, [...t.cases.keys()]]), [['per_case', 'per_case', ['7']]]);
});

test('lower-is-better names flip the sign; definitions are looked up with qualifiers and region scopes', () => {
  for (const name of ['hd95', 'WT_hd95', 'val_loss', 'error_rate', 'mean_distance']) assert.ok(lowerIsBetter(name), name);
  for (const name of ['dice', 'iou', 'sensitivity', 'accuracy']) assert.ok(!lowerIsBetter(name), name);
  assert.equal(improvementOf('dice', 0.1), 0.1);
  assert.equal(improvementOf('hd95', 2), -2);
  assert.deepEqual(definitionOf(DEFINITIONS, 'hd95', 'regions.TC.per_case'), { hd95: DEFINITIONS.hd95, hd95_units: 'mm', 'regions.TC': [1, 4] });
  assert.deepEqual(definitionOf(DEFINITIONS, 'WT_dice'), { dice: DEFINITIONS.dice });
  assert.equal(definitionOf(DEFINITIONS, 'tp'), undefined);
});

test('cases are matched by id per region, signed by direction, ranked by change; redefined metrics are named, not compared', () => {
  const a = bratsMetrics(base, () => 5);
  // B: case A_1 gets much better in WT (dice up, hd95 down), B_2 worse in ET; ET's hd95 is measured in voxels.
  const b = bratsMetrics(
    (r, id) => base(r, id) + (r === 'WT' && id === 'BraTS19_A_1' ? 0.3 : r === 'ET' && id === 'BraTS19_B_2' ? -0.2 : 0),
    (r, id) => (r === 'WT' && id === 'BraTS19_A_1' ? 2 : 5),
    { ...DEFINITIONS, hd95_units: 'voxels' },
  );
  const cmp = compareCases(a, b);
  assert.deepEqual(cmp.tables.map((t) => t.group), ['WT', 'TC', 'ET']);
  for (const t of cmp.tables) {
    assert.deepEqual(t.metrics, ['dice'], 'hd95 redefined, counts undefined');
    assert.deepEqual(t.redefined.map((r) => r.metric), ['hd95']);
    assert.deepEqual(t.redefined[0]!.a, { hd95: DEFINITIONS.hd95, hd95_units: 'mm', [`regions.${t.group}`]: (DEFINITIONS.regions as JsonObject)[t.group]! });
  }
  const wt = cmp.tables[0]!;
  assert.equal(wt.cases[0]!.id, 'BraTS19_A_1');
  assert.equal(wt.cases[0]!.verdict, 'better');
  assert.ok(Math.abs(wt.cases[0]!.improvement - 0.3) < 1e-12);
  assert.deepEqual([wt.better, wt.worse, wt.same], [1, 0, 2]);
  const et = cmp.tables[2]!;
  assert.equal(et.cases[0]!.id, 'BraTS19_B_2');
  assert.equal(et.cases[0]!.verdict, 'worse');
  assert.deepEqual(mostChangedCases(cmp).slice(0, 2).map((c) => [c.id, c.group]), [['BraTS19_A_1', 'WT'], ['BraTS19_B_2', 'ET']]);

  // Same definitions: hd95 is compared and a drop counts as an improvement.
  const same = compareCases(a, bratsMetrics(base, (_r, id) => (id === 'BraTS19_A_10' ? 1 : 5)));
  const tc = same.tables[1]!;
  assert.deepEqual(tc.metrics, ['dice', 'hd95']);
  const row = tc.cases.find((c) => c.id === 'BraTS19_A_10')!;
  assert.deepEqual(row.changes.hd95, { old: 5, new: 1, delta: -4, improvement: 4 });
  assert.equal(row.verdict, 'same', 'ranked by the primary metric (dice), which did not move');

  // A region whose labels changed cannot be compared at all; cases present in one run only are listed.
  const relabelled = compareCases(a, bratsMetrics(base, () => 5, { ...DEFINITIONS, regions: { WT: [1, 2, 4], TC: [1, 4], ET: [2] } }, [...CASES.slice(1), 'BraTS19_C_3']));
  assert.deepEqual(relabelled.tables[2]!.metrics, []);
  assert.deepEqual(relabelled.tables[2]!.cases, []);
  assert.deepEqual(relabelled.tables[0]!.onlyInA, ['BraTS19_A_1']);
  assert.deepEqual(relabelled.tables[0]!.onlyInB, ['BraTS19_C_3']);

  // Without a definitions block every numeric field is a metric; tables in one run only are named.
  const bare = compareCases({ per_case: [{ id: 'x', loss: 2, acc: 0.5 }] }, { per_case: [{ id: 'x', loss: 1, acc: 0.5 }], extra: [{ id: 'y', v: 1 }] });
  assert.deepEqual(bare.tables[0]!.metrics, ['loss', 'acc']);
  assert.equal(bare.tables[0]!.cases[0]!.verdict, 'better', 'loss went down');
  assert.deepEqual(bare.onlyInB, ['extra']);
});

test('a case id matches a file name only as a whole token', () => {
  assert.ok(nameShowsCase('/p/000_0a784e9d504d_06.png', '0a784e9d504d_06'));
  assert.ok(nameShowsCase('BraTS19_A_1.png', 'BraTS19_A_1'));
  assert.ok(nameShowsCase('3_BraTS19_A_1-slice.png', 'BraTS19_A_1'));
  assert.ok(!nameShowsCase('BraTS19_A_10.png', 'BraTS19_A_1'));
  assert.ok(!nameShowsCase('x0a784e9d504d_06.png', '0a784e9d504d_06'));
  assert.ok(!nameShowsCase('0a784e9d504d_06.png', '0a784e9d504d_0'));
});

/** A finished run folder with the given metrics and, under its predict stage, one PNG panel per case. */
async function writeRun(runsDir: string, runId: string, params: JsonObject, metrics: JsonObject, panelShade: number, status: 'done' | 'failed' = 'done'): Promise<string> {
  const runDir = path.join(runsDir, 'brats', runId);
  const predictOuts = path.join(runsDir, '..', 'cache', runId, 'predict');
  fs.mkdirSync(path.join(predictOuts, 'panels'), { recursive: true });
  fs.mkdirSync(path.join(runDir, 'stages'), { recursive: true });
  for (const [i, id] of CASES.entries()) {
    await sharp({ create: { width: 24, height: 8, channels: 3, background: { r: panelShade, g: 40 * i, b: 90 } } }).png().toFile(path.join(predictOuts, 'panels', `${String(i).padStart(3, '0')}_${id}.png`));
  }
  fs.symlinkSync(predictOuts, path.join(runDir, 'stages', 'predict'));
  const stage = (key: string, cached: boolean, reason: string[], error: string | null = null): JsonObject => ({ status: error ? 'failed' : 'done', cached, key, reason, started: '2026-01-01T00:00:00.000Z', ended: '2026-01-01T00:00:01.000Z', durationMs: 1000, error, resumedFromCheckpoint: false });
  const stages: JsonObject = runId.endsWith('a')
    ? { ingest: stage('k-ingest', false, ['new: no earlier run']), predict: stage('k-predict-a', false, ['new: no earlier run']) }
    : { ingest: stage('k-ingest', true, []), predict: stage('k-predict-b', false, ['param predict.lr: 0.1 → 0.2'], status === 'failed' ? 'predict: out of memory\nat line 3' : null) };
  const state = { runId, pipeline: 'brats', file: '/p/brats.yaml', baseDir: '/p', overrides: [], cacheDir: '/c', status, pid: 1, host: 'elsewhere', started: `2026-01-01T00:0${runId.endsWith('a') ? 0 : 1}:00.000Z`, ended: '2026-01-01T00:02:00.000Z', order: ['ingest', 'predict'], stages };
  fs.writeFileSync(path.join(runDir, 'state.json'), JSON.stringify(state));
  fs.writeFileSync(path.join(runDir, 'config.yaml'), `name: brats\nparams: ${JSON.stringify(params)}\nreport:\n  - \${stages.predict.outs.panels}\n`);
  fs.writeFileSync(path.join(runDir, 'metrics.json'), JSON.stringify(metrics));
  return runDir;
}

test('diffRuns on run folders: signed metric deltas, per-region cases, and a page with both runs\' panels', async () => {
  const root = makeTempDir('flow-compare-');
  const runsDir = path.join(root, 'runs');
  const dirA = await writeRun(runsDir, '20260101-000000-aaaa', { lr: 0.1, data: { root: '/data/a/very/long/path/to/brats2019/MICCAI_BraTS_2019_Data_Training' } }, bratsMetrics(base, () => 5), 10);
  const better = (r: string, id: string): number => base(r, id) + (id === 'BraTS19_A_10' ? 0.25 : 0);
  const dirB = await writeRun(runsDir, '20260101-000100-bbbb', { lr: 0.2, data: { root: '/data/a/very/long/path/to/brats2019/MICCAI_BraTS_2019_Data_Validation' } }, bratsMetrics(better, () => 4), 200);
  const d = await diffRuns(dirA, dirB);
  assert.deepEqual(d.params.map((p) => p.name), ['data.root', 'lr']);
  const wtHd = d.metrics.find((m) => m.name === 'WT_hd95')!;
  assert.deepEqual(wtHd, { name: 'WT_hd95', old: 5, new: 4, delta: -1, lowerIsBetter: true });
  assert.ok(d.better.includes('WT_hd95') && d.better.includes('WT_dice'), 'a lower hd95 and a higher dice are both better');
  assert.deepEqual(d.worse, []);
  for (const r of REGIONS) assert.equal(d.metrics.find((m) => m.name === `regions.${r}.mean.hd95`)!.sameAs, `${r}_hd95`, 'each region\'s mean is its own top-level number');
  assert.ok(!d.metrics.some((m) => m.name.startsWith('definitions.')));
  assert.deepEqual(d.stages.map((s) => [s.name, s.change]), [['ingest', 'same-key'], ['predict', 'rerun']]);
  assert.deepEqual(d.cases.tables.map((t) => t.cases[0]!.id), ['BraTS19_A_10', 'BraTS19_A_10', 'BraTS19_A_10']);
  const text = formatDiff(d);
  assert.match(text, /WT_hd95: 5 → 4 \(-1\.000, better\)/);
  assert.match(text, /WT \(regions\.WT\.per_case\): 1 better, 0 worse, 2 unchanged of 3 cases, ranked by dice/);
  assert.match(text, /ingest: unchanged \(B reused the same result\)/);

  const html = renderDiffHtml(d, dirA, dirB);
  const blocks = [...html.matchAll(/<div class="case-pictures" data-case="([^"]+)">([\s\S]*?)(?=<div class="case-pictures"|<\/section>)/g)];
  assert.equal(blocks.length, 3, 'every case has panels; at most 6 shown');
  assert.equal(blocks[0]![1], 'BraTS19_A_10', 'the most-changed case first');
  const pics = [...blocks[0]![2]!.matchAll(/<figure data-run="([^"]+)"><img alt="[^"]*"[^>]*? src="data:image\/png;base64,([^"]+)"/g)];
  assert.deepEqual(pics.map((p) => p[1]), [d.a, d.b]);
  const own = (dir: string): string => fs.readFileSync(path.join(dir, 'stages', 'predict', 'panels', '001_BraTS19_A_10.png')).toString('base64');
  assert.deepEqual(pics.map((p) => p[2]), [own(dirA), own(dirB)], 'A\'s panel left, B\'s right, and not BraTS19_A_1\'s');
  assert.match(blocks[0]![2]!, /<img alt="[^"]*" class="upscaled" style="width:552px"/, 'a 24-px panel is scaled up by a whole factor (23)');
  assert.match(html, /<table class="data per-case" data-table="regions\.ET\.per_case">/);
  assert.ok(!/(src|href)="https?:/.test(html));

  // A definition that differs: the metric is named, with no delta.
  const redefined = await writeRun(path.join(root, 'runs2'), '20260101-000100-bbbb', { lr: 0.2 }, bratsMetrics(base, () => 4, { ...DEFINITIONS, hd95_units: 'voxels' }), 50);
  const d2 = await diffRuns(dirA, redefined);
  const hd = d2.metrics.find((m) => m.name === 'WT_hd95')!;
  assert.equal(hd.delta, null);
  assert.match(hd.note!, /definition differs/);
  assert.deepEqual(d2.definitions, [{ name: 'hd95_units', old: 'mm', new: 'voxels' }]);
  assert.match(formatDiff(d2), /WT_hd95: 5 → 4 \(definition differs between the runs; not compared\)/);

  // A run that failed before writing metrics.json: no metric is listed as "→ —", the failed stage says why.
  const failed = await writeRun(path.join(root, 'runs3'), '20260101-000100-bbbb', { lr: 0.2 }, {}, 50, 'failed');
  fs.rmSync(path.join(failed, 'metrics.json'));
  const d3 = await diffRuns(dirA, failed);
  assert.deepEqual(d3.missingMetrics, ['b']);
  assert.deepEqual([d3.metrics, d3.definitions, d3.cases.tables], [[], [], []]);
  assert.deepEqual(d3.cases.onlyInA, REGIONS.map((r) => `regions.${r}.per_case`));
  assert.deepEqual(d3.stages.find((s) => s.name === 'predict'), { name: 'predict', change: 'not-done', keyA: 'k-predict-a', keyB: 'k-predict-b', reason: ['failed: predict: out of memory'] });
  assert.match(formatDiff(d3), /has no metrics\.json \(B stopped before writing one\)/);
  assert.match(renderDiffHtml(d3, dirA, failed), /has no metrics\.json/);
});

test('flow diff --html [FILE] and flow runs through the CLI', async () => {
  const project = await makeProject();
  const runsDir = project.runsDir;
  await writeRun(runsDir, '20260101-000000-aaaa', { lr: 0.1, data: { root: '/data/a/very/long/path/to/brats2019/MICCAI_BraTS_2019_Data_Training' } }, bratsMetrics(base, () => 5), 10);
  await writeRun(runsDir, '20260101-000100-bbbb', { lr: 0.2, data: { root: '/data/a/very/long/path/to/brats2019/MICCAI_BraTS_2019_Data_Validation' } }, bratsMetrics(base, () => 4), 200, 'failed');
  const byDefault = await runCli(project, ['diff', '20260101-000000', '20260101-000100', '--html', '--runs', runsDir]);
  assert.equal(byDefault.code, 0, byDefault.stderr);
  const defaultFile = path.join(runsDir, 'brats', 'diff-20260101-000000-aaaa-20260101-000100-bbbb.html');
  assert.ok(fs.existsSync(defaultFile), byDefault.stderr);
  assert.match(byDefault.stdout, /per case:/);
  const named = await runCli(project, ['diff', '--html', 'out/page.html', '20260101-000000', '20260101-000100', '--runs', runsDir, '--json']);
  assert.equal(named.code, 0, named.stderr);
  assert.ok(fs.existsSync(path.join(project.dir, 'out', 'page.html')));
  assert.equal(JSON.parse(named.stdout).cases.tables.length, 3);

  const runs = await runCli(project, ['runs', '--runs', runsDir]);
  assert.equal(runs.code, 0, runs.stderr);
  const [title, header, , rowA, rowB] = runs.stdout.split('\n');
  assert.equal(title, 'brats  (2 runs: 1 done, 1 failed)');
  assert.match(header!, /^id\s+status\s+started\s+duration\s+data\.root\s+lr\s+WT_dice\s+TC_dice\s+ET_dice\s+WT_hd95\s+TC_hd95\s+ET_hd95$/);
  const clippedA = clip('/data/a/very/long/path/to/brats2019/MICCAI_BraTS_2019_Data_Training');
  assert.ok(clippedA.includes('…') && rowA!.includes(`  ${clippedA}  `), rowA);
  assert.match(rowA!, /^20260101-000000-aaaa\s+done\s.*\s0\.1\s+0\.5100\s+0\.6100\s+0\.7100\s+5\s+5\s+5$/);
  assert.match(rowB!, /^20260101-000100-bbbb\s+failed at predict\s.*…ta_Validation\s+0\.2\s/);
  assert.match(runs.stdout, /20260101-000100-bbbb: predict failed: predict: out of memory$/m);
  const json = JSON.parse((await runCli(project, ['runs', '--json', '--runs', runsDir])).stdout) as { stoppedAt: string | null; params: JsonObject }[];
  assert.deepEqual(json.map((r) => r.stoppedAt), [null, 'predict']);
  assert.equal(json[1]!.params['data.root'], '/data/a/very/long/path/to/brats2019/MICCAI_BraTS_2019_Data_Validation', '--json keeps values whole');
  assert.equal(formatRunsTable(await listRunSummaries(runsDir)), runs.stdout);
  // Fitted to a narrow terminal: cells narrowed first, then the least needed columns hidden and named.
  const narrow = formatRunsTable(await listRunSummaries(runsDir), 80);
  for (const line of narrow.split('\n')) assert.ok(line.length <= 80 || line.startsWith('(not shown'), `${line.length}: ${line}`);
  assert.match(narrow, /^\(not shown to fit 80 columns: started, duration, [^)]*\blr; widen the terminal or use --json\)$/m);
  assert.match(narrow, /^id\s+status\s+data\.root\s+WT_dice\s+TC_dice\s+ET_dice$/m);
});

test('key metrics, clipped cells, file types sniffed from content', async () => {
  assert.deepEqual(keyMetrics({ WT_dice: 1, WT_global_dice: 1, WT_hd95: 1, TC_dice: 1, 'regions.WT.mean.dice': 1, 'cases.total': 1 }), ['WT_dice', 'TC_dice', 'WT_hd95']);
  assert.deepEqual(keyMetrics({ 'regions.car.mean.dice': 1, 'cases.total': 3 }), ['regions.car.mean.dice']);
  assert.deepEqual(keyMetrics({ steps: 3 }), ['steps']);
  assert.equal(clip('short'), 'short');
  const long = clip('/data/abcdefghijklmnopqrstuvwxyz/0123456789');
  assert.equal(long.length, 28);
  assert.match(long, /^\/data\/abcdefgh.*….*0123456789$/);
  const dir = makeTempDir('flow-filetype-');
  const write = (name: string, data: string | Buffer): string => {
    fs.writeFileSync(path.join(dir, name), data);
    return path.join(dir, name);
  };
  assert.equal(fileType(write('table', 'id,dice\na,0.5\nb,0.7\n')), '.csv');
  assert.equal(fileType(write('metrics', '{"dice": 1}')), '.json');
  assert.equal(fileType(write('notes', 'hello, world\nno table here\n')), '.txt');
  assert.equal(fileType(write('curve', '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>')), '.svg');
  assert.equal(fileType(write('panel', await sharp({ create: { width: 2, height: 2, channels: 3, background: '#123456' } }).png().toBuffer())), '.png');
  assert.equal(fileType(write('photo', await sharp({ create: { width: 2, height: 2, channels: 3, background: '#123456' } }).jpeg().toBuffer())), '.jpg');
});

test('report.html of a failed run: the stopping stage and its error first, per-region means and per-case rows', async () => {
  const root = makeTempDir('flow-report-');
  const runDir = await writeRun(path.join(root, 'runs'), '20260101-000100-bbbb', { lr: 0.2 }, bratsMetrics(base, () => 4), 50, 'failed');
  const html = renderRunReport(runDir);
  assert.match(html, /<section class="stopped failed" id="stopped"><h2>Stage <b>predict<\/b> failed<\/h2><pre>predict: out of memory\nat line 3<\/pre>/);
  assert.match(html, /flow resume 20260101-000100-bbbb/);
  assert.match(html, /<tr class="stage failed"><th>predict<\/th>[\s\S]*?<div class="error">predict: out of memory/);
  for (const r of REGIONS) {
    const mean = (bratsMetrics(base, () => 4).regions as Record<string, { mean: { dice: number } }>)[r]!.mean.dice;
    assert.match(html, new RegExp(`<tr><th>${r} mean</th><td class="num">3</td><td class="num">${mean.toFixed(4)}</td>`), `${r}: its own mean, from metrics.json`);
  }
  assert.equal((html.match(/<table class="data per-case" data-table="regions\.(WT|TC|ET)\.per_case">/g) ?? []).length, 3);
  assert.equal((html.match(/<tr><th>BraTS19_A_10<\/th>/g) ?? []).length, 3, 'one row per case and region');
  // The report: output's panels are embedded as pictures, the tiny ones scaled up.
  assert.equal((html.match(/<figure class="picture"><img [^>]*class="upscaled"/g) ?? []).length, CASES.length);
});
