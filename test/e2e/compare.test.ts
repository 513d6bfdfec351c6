// Comparing two real runs of the Carvana pipeline (small overrides: 32 px, 4 filters, 2 epochs), the second
// with a different learning rate: `flow diff --json` names the changed param, the metric deltas, the stages
// that re-ran and the per-case changes; `--html` writes a page with both runs' panels of the most-changed
// cases; `flow runs` lists both with the differing param and key metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { flow, makeFlowHome, setArgs, SMALL_TRAINING } from './helpers.js';

const SMALL = setArgs(SMALL_TRAINING);

interface DiffJson {
  a: string;
  b: string;
  params: { name: string; old: unknown; new: unknown }[];
  metrics: { name: string; old: number | null; new: number | null; delta: number | null; lowerIsBetter?: true }[];
  better: string[];
  worse: string[];
  stages: { name: string; change: string; reason: string[] }[];
  cases: {
    tables: {
      path: string;
      group: string;
      metrics: string[];
      better: number;
      worse: number;
      same: number;
      cases: { id: string; metric: string; improvement: number; verdict: string; changes: Record<string, { old: number; new: number; delta: number; improvement: number }> }[];
    }[];
  };
}

test('flow diff of two real carvana runs: changed param, metric deltas, re-run stages, per-case changes, --html with both runs\' panels', { timeout: 240_000 }, async () => {
  const home = makeFlowHome('flow-e2e-compare-');
  const dir = home.dir;
  const first = await flow(home, ['run', 'pipelines/carvana.yaml', ...SMALL]);
  assert.equal(first.code, 0, first.stderr);
  const second = await flow(home, ['run', 'pipelines/carvana.yaml', ...SMALL, '--set', 'train.lr=0.02']);
  assert.equal(second.code, 0, second.stderr);
  const runIds = fs.readdirSync(path.join(dir, 'runs', 'carvana')).sort();
  assert.equal(runIds.length, 2);
  const [idA, idB] = runIds as [string, string];

  const diffRun = await flow(home, ['diff', idA, idB, '--json']);
  assert.equal(diffRun.code, 0, diffRun.stderr);
  const diff = JSON.parse(diffRun.stdout) as DiffJson;
  assert.deepEqual(diff.params, [{ name: 'train.lr', old: 0.003, new: 0.02 }]);

  const dice = diff.metrics.find((m) => m.name === 'dice');
  assert.ok(dice && dice.old !== null && dice.new !== null, 'the headline dice is compared');
  assert.ok(Math.abs(dice.delta! - (dice.new! - dice.old!)) < 1e-12);
  assert.equal(dice.lowerIsBetter, undefined, 'dice: higher is better');
  assert.ok((dice.delta! > 0 ? diff.better : diff.worse).includes('dice'));
  const hd95 = diff.metrics.find((m) => m.name === 'hd95');
  if (hd95 && hd95.delta !== null) {
    assert.equal(hd95.lowerIsBetter, true);
    assert.ok((hd95.delta < 0 ? diff.better : diff.worse).includes('hd95'), 'hd95: lower is better, so a drop is better');
  }
  assert.ok(!diff.metrics.some((m) => m.name.startsWith('definitions.')), 'definition numbers are no metric');

  const change = Object.fromEntries(diff.stages.map((s) => [s.name, s.change]));
  for (const stage of ['ingest', 'records', 'dataset', 'preprocess', 'model']) assert.equal(change[stage], 'same-key', `${stage} reused`);
  for (const stage of ['hparams', 'train', 'predict', 'evaluate']) assert.equal(change[stage], 'rerun', `${stage} re-ran`);
  assert.match(diff.stages.find((s) => s.name === 'hparams')!.reason.join(' '), /lr/);

  assert.equal(diff.cases.tables.length, 1);
  const table = diff.cases.tables[0]!;
  assert.equal(table.path, 'regions.car.per_case');
  assert.equal(table.group, 'car');
  assert.equal(table.metrics[0], 'dice', 'ranked by dice');
  assert.ok(table.metrics.includes('hd95'));
  assert.ok(!table.metrics.includes('tp'), 'confusion counts have no definition and are not ranked');
  assert.equal(table.cases.length, 20);
  assert.equal(table.better + table.worse + table.same, 20);
  // Cross-check the per-case deltas against both runs' own metrics.json.
  const perCase = (id: string): Map<string, { dice: number; hd95: number }> => {
    const metrics = JSON.parse(fs.readFileSync(path.join(dir, 'runs', 'carvana', id, 'metrics.json'), 'utf8')) as { regions: { car: { per_case: { id: string; dice: number; hd95: number }[] } } };
    return new Map(metrics.regions.car.per_case.map((c) => [c.id, c]));
  };
  const casesA = perCase(idA);
  const casesB = perCase(idB);
  for (const c of table.cases) {
    assert.equal(c.changes.dice!.old, casesA.get(c.id)!.dice);
    assert.equal(c.changes.dice!.new, casesB.get(c.id)!.dice);
    assert.equal(c.changes.hd95!.improvement, casesA.get(c.id)!.hd95 - casesB.get(c.id)!.hd95);
    assert.equal(c.verdict, c.improvement > 1e-12 ? 'better' : c.improvement < -1e-12 ? 'worse' : 'same');
  }
  const magnitudes = table.cases.map((c) => Math.abs(c.improvement));
  assert.deepEqual(magnitudes, [...magnitudes].sort((x, y) => y - x), 'most-changed case first');
  assert.ok(magnitudes[0]! > 0, 'a different learning rate changes some case');

  // Text form: the changed param, the verdicts, the per-case section.
  const text = await flow(home, ['diff', idA, idB]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /train\.lr: 0\.003 → 0\.02/);
  assert.match(text.stdout, /car \(regions\.car\.per_case\): \d+ better, \d+ worse/);
  assert.match(text.stdout, new RegExp(`${table.cases[0]!.id}\\s+dice `));

  // --html with an explicit file, and the default file beside the runs.
  const page = path.join(dir, 'compare.html');
  const html = await flow(home, ['diff', idA, idB, '--html', page]);
  assert.equal(html.code, 0, html.stderr);
  assert.match(html.stderr, /wrote .*compare\.html/);
  const doc = fs.readFileSync(page, 'utf8');
  assert.match(doc, /train\.lr/);
  assert.ok(!/(src|href)="https?:/.test(doc), 'self-contained');
  const blocks = [...doc.matchAll(/<div class="case-pictures" data-case="([^"]+)">([\s\S]*?)(?=<div class="case-pictures"|<\/section>)/g)];
  assert.ok(blocks.length >= 1 && blocks.length <= 6, `1..6 side-by-side cases, got ${blocks.length}`);
  const panels = fs.readdirSync(path.join(dir, 'runs', 'carvana', idA, 'stages', 'predict', 'panels'));
  const ranked = table.cases.map((c) => c.id).filter((id) => panels.some((p) => p.includes(id)));
  assert.deepEqual(
    blocks.map((b) => b[1]),
    ranked.slice(0, blocks.length),
    'the most-changed cases that have panels, in order',
  );
  for (const [, id, body] of blocks) {
    const images = [...body!.matchAll(/<figure data-run="([^"]+)"><img alt="[^"]*"[^>]*? src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)];
    assert.deepEqual(images.map((m) => m[1]), [idA, idB], `${id}: A's and B's panel side by side`);
    const panelA = fs.readFileSync(path.join(dir, 'runs', 'carvana', idA, 'stages', 'predict', 'panels', panels.find((p) => p.includes(id!))!));
    assert.equal(images[0]![2], panelA.toString('base64'), `${id}: A's own panel file`);
  }
  const byDefault = await flow(home, ['diff', idA, idB, '--html']);
  assert.equal(byDefault.code, 0, byDefault.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'runs', 'carvana', `diff-${idA}-${idB}.html`)));

  // flow runs: both runs, the differing param as a column, key metrics, and the html file is no run.
  const runs = await flow(home, ['runs']);
  assert.equal(runs.code, 0, runs.stderr);
  const lines = runs.stdout.trimEnd().split('\n');
  assert.equal(lines[0], 'carvana  (2 runs: 2 done)');
  assert.match(lines[1]!, /^id\s+status\s+started\s+duration\s+train\.lr\s+dice\s+hd95\s+iou/);
  assert.equal(lines.length, 5, runs.stdout);
  assert.match(lines[3]!, new RegExp(`^${idA}\\s+done\\s.*\\s0\\.003\\s+${dice.old!.toFixed(4)}\\s`));
  assert.match(lines[4]!, new RegExp(`^${idB}\\s+done\\s.*\\s0\\.02\\s+${dice.new!.toFixed(4)}\\s`));
});
