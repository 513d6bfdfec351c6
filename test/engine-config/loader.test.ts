// Good pipelines resolve to the expected stages, order, inputs and params; overrides, provenance, the
// config snapshot and the graph renderings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { stringify } from 'yaml';
import { fixturesDir } from '../helpers/paths.js';
import { canonicalJson, dependentsOf, loadPipeline, loadPipelineFromText, renderGraph } from '../../engine/pipeline/index.js';
import { toyCatalog } from './toy-catalog.js';

const goodDir = path.join(fixturesDir, 'pipelines', 'good');
const load = (overrides: string[] = []) => loadPipeline('toy.yaml', { baseDir: goodDir, catalog: toyCatalog, overrides });

test('the toy pipeline resolves stages, order, inputs, params and outputs', () => {
  const p = load();
  assert.equal(p.name, 'toy');
  assert.equal(p.file, path.join(goodDir, 'toy.yaml'));
  assert.deepEqual(p.order, ['ingest', 'records', 'hparams', 'train', 'report']);
  assert.deepEqual(Object.keys(p.stages), ['ingest', 'records', 'hparams', 'train', 'report']);
  assert.deepEqual(p.params, { data: { root: 'data/raw' }, train: { epochs: 3, lr: 0.001, seed: 42 }, input_size: [32, 48], tag: 'e3' });

  const { ingest, records, hparams, train, report } = p.stages;
  assert.deepEqual(ingest!.inputs, { root: { type: 'path', path: path.join(goodDir, 'data/raw') } });
  assert.deepEqual(ingest!.params, { strict: false }, 'defaults applied');
  assert.deepEqual(records!.inputs, { samples: { type: 'stage', stage: 'ingest', output: 'index' } });
  assert.deepEqual(records!.params, { shard_size: 16, compression: 'gzip' });
  assert.deepEqual(records!.outputs, { shards: { type: 'dir' } });
  assert.deepEqual(hparams!.params, { epochs: 3, lr: 0.001, seed: 42, batch_size: 8 }, 'a whole subtree keeps its types');
  assert.deepEqual(train!.params, { epochs: 3, size: [32, 48], name: 'run-e3', lr: 0.001, optimizer: 'adam' });
  assert.deepEqual(train!.needs, ['records', 'hparams']);

  assert.equal(report!.kind, null);
  assert.deepEqual(report!.params, {});
  assert.deepEqual(report!.inputs, {
    dep0: { type: 'path', path: path.join(goodDir, 'report.py') },
    dep1: { type: 'stage', stage: 'ingest', output: 'report' },
    run0: { type: 'stage', stage: 'train', output: 'metrics' },
  });
  assert.deepEqual(report!.outputs, { summary: { type: 'file', path: 'summary.txt' }, plots: { type: 'dir', path: 'plots' } });
  assert.deepEqual(report!.needs, ['ingest', 'train', 'records']);
  assert.deepEqual(report!.command, [
    'python report.py ',
    { type: 'stage', stage: 'train', output: 'metrics' },
    ' --lr 0.001 > ',
    { type: 'own-output', output: 'summary' },
    ' && echo ${HOME}',
  ]);
  assert.equal(report!.commandText, 'python report.py ${stages.train.outs.metrics} --lr 0.001 > ${outs.summary} && echo $${HOME}');
  assert.deepEqual(p.metrics, { type: 'stage', stage: 'train', output: 'metrics' });
  assert.deepEqual(p.report, [{ type: 'stage', stage: 'report', output: 'plots' }]);
});

test('paramSources say where each param was written and which pipeline param it came through', () => {
  const p = load();
  assert.deepEqual(p.stages.records!.paramSources.shard_size, { file: 'toy.yaml', line: 18, column: 27 });
  assert.deepEqual(p.stages.hparams!.paramSources.lr, { file: 'toy.yaml', line: 7, column: 9, viaParam: 'train.lr' });
  assert.deepEqual(p.stages.train!.paramSources['size.1'], { file: 'toy.yaml', line: 9, column: 20, viaParam: 'input_size.1' });
  assert.equal(p.stages.hparams!.paramSources.batch_size, undefined, 'a default has no source');
});

test('overrides change params everywhere they are referenced, and are recorded as the source', () => {
  const overrides = ['train.lr=5e-4', '+data.cache=tmp', 'input_size.0=96', 'stages.records.params.shard_size=32', 'stages.ingest.params.strict=true'];
  const p = load(overrides);
  assert.deepEqual(p.overrides, overrides);
  assert.deepEqual(p.params.train, { epochs: 3, lr: 0.0005, seed: 42 });
  assert.deepEqual(p.params.data, { root: 'data/raw', cache: 'tmp' });
  assert.equal(p.stages.records!.params.shard_size, 32);
  assert.equal(p.stages.ingest!.params.strict, true, 'a param the kind declares may be set without +');
  assert.deepEqual(p.stages.train!.params.size, [96, 48]);
  assert.match(p.stages.report!.commandText!, /--lr 0\.0005 >/);
  assert.deepEqual(p.stages.hparams!.paramSources.lr, { file: '<--set>', line: 1, column: 10, viaParam: 'train.lr' });
  assert.deepEqual(p.stages.records!.paramSources.shard_size, { file: '<--set>', line: 4, column: 34 });
});

test('the config snapshot reads back as the same pipeline', () => {
  const p = load(['train.lr=5e-4']);
  assert.equal((p.config.stages as Record<string, { run?: string }>).report!.run, p.stages.report!.commandText);
  assert.deepEqual((p.config.stages as Record<string, { params?: unknown }>).hparams!.params, p.stages.hparams!.params);
  const again = loadPipelineFromText(stringify(p.config), 'toy.yaml', { baseDir: goodDir, catalog: toyCatalog });
  assert.equal(canonicalJson(again.params), canonicalJson(p.params));
  assert.deepEqual(again.order, p.order);
  for (const name of p.order) {
    assert.equal(canonicalJson(again.stages[name]!.params), canonicalJson(p.stages[name]!.params), name);
    assert.deepEqual(again.stages[name]!.inputs, p.stages[name]!.inputs, name);
    assert.deepEqual(again.stages[name]!.command, p.stages[name]!.command, name);
  }
});

test('the order follows the file where the edges leave a choice, and dependencies first', () => {
  const text = [
    'name: order',
    'stages:',
    '  late: { run: "cat ${stages.early.outs.x} > ${outs.y}", outs: { y: y.txt } }',
    '  early: { run: "date > ${outs.x}", outs: { x: x.txt } }',
    '  free: { run: "true" }',
    '  after: { run: "true", needs: [late, free] }',
  ].join('\n');
  const p = loadPipelineFromText(text, 'order.yaml', { baseDir: goodDir, catalog: toyCatalog });
  assert.deepEqual(p.order, ['early', 'late', 'free', 'after']);
  assert.deepEqual(p.stages.after!.needs, ['late', 'free']);
  assert.deepEqual(dependentsOf(p, ['early']), ['early', 'late', 'after']);
});

test('dependentsOf returns the stages and everything downstream, in run order', () => {
  const p = load();
  assert.deepEqual(dependentsOf(p, ['records']), ['records', 'train', 'report']);
  assert.deepEqual(dependentsOf(p, ['hparams']), ['hparams', 'train', 'report']);
  assert.deepEqual(dependentsOf(p, ['report']), ['report']);
  assert.throws(() => dependentsOf(p, ['nope']), /no stage nope/);
});

test('renderGraph: text, mermaid and dot', () => {
  const p = load();
  assert.equal(
    renderGraph(p, 'text'),
    [
      'toy: 5 stages',
      '  ingest   toy.ingest',
      '  records  toy.write   ← ingest.index',
      '  hparams  hparams',
      '  train    toy.train   ← records.shards, hparams.hparams',
      '  report   command     ← ingest.report, train.metrics, records (after)',
      '',
    ].join('\n'),
  );
  const mermaid = renderGraph(p, 'mermaid');
  assert.ok(mermaid.startsWith('flowchart TD\n'));
  assert.ok(mermaid.includes('  s_records["records<br/><small>toy.write</small>"]\n'));
  assert.ok(mermaid.includes('  s_report[/"report<br/><small>command</small>"/]\n'));
  assert.ok(mermaid.includes('  s_hparams -->|hparams| s_train\n'));
  assert.ok(mermaid.includes('  s_records -.-> s_report\n'));
  assert.equal(mermaid.match(/-->|-\.->/g)?.length, 6);
  const dot = renderGraph(p, 'dot');
  assert.ok(dot.startsWith('digraph "toy" {\n'));
  assert.ok(dot.includes('  "ingest" [label="ingest\\ntoy.ingest"];\n'));
  assert.ok(dot.includes('  "records" -> "train" [label="shards"];\n'));
  assert.ok(dot.includes('  "records" -> "report" [style=dashed];\n'));
  assert.ok(dot.trimEnd().endsWith('}'));
});

test('a stage name with a dash gets a valid mermaid id', () => {
  const p = loadPipelineFromText('name: dash\nstages:\n  my-step: { run: "true" }\n', 'dash.yaml', { baseDir: goodDir, catalog: toyCatalog });
  assert.match(renderGraph(p, 'mermaid'), /^ {2}s_my_2d_step\[\/"my-step/m);
});
