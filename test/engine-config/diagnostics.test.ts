// Malformed pipelines: each must be refused with a diagnostic at the exact place the mistake was written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fixturesDir, repoRoot } from '../helpers/paths.js';
import { formatDiagnostic, loadPipeline, loadPipelineFromText, parseOverride, PipelineError, type Diagnostic } from '../../engine/pipeline/index.js';
import { MapCatalog } from '../../engine/registry.js';
import type { StageCatalog } from '../../engine/catalog.js';
import type { JsonObject } from '../../engine/stage.js';
import { toyCatalog, toyEntries } from './toy-catalog.js';

const badDir = path.join(fixturesDir, 'pipelines', 'bad');

// The toy kinds plus model.build with its real params schema (for the cross-field divisibleByPowerOfTwo rule).
const withModelBuild = new MapCatalog([
  ...toyEntries,
  {
    kind: 'model.build', version: '1', description: 'model.build (real params schema)', inputs: {},
    outputs: { model: { description: 'model', type: 'dir' } },
    paramsSchema: JSON.parse(fs.readFileSync(path.join(repoRoot, 'schemas', 'stages', 'model.build.schema.json'), 'utf8')) as JsonObject,
    modulePath: '/nowhere/model.build.js', codeDigest: 'toy', codeFiles: {},
  },
]);

function diagnosticsOf(file: string, overrides: string[] = [], catalog: StageCatalog = toyCatalog): Diagnostic[] {
  try {
    loadPipeline(file, { baseDir: badDir, catalog, overrides });
  } catch (error) {
    assert.ok(error instanceof PipelineError, `expected a PipelineError, got ${String(error)}`);
    assert.equal(error.message, error.diagnostics.map(formatDiagnostic).join('\n'));
    return error.diagnostics;
  }
  assert.fail(`${file} loaded without an error`);
}

interface Expected {
  at: string; // file:line:column
  phrase: string | RegExp;
  hint?: string | RegExp;
}

function expectDiagnostics(actual: Diagnostic[], expected: Expected[]): void {
  const shown = actual.map(formatDiagnostic).join('\n');
  assert.equal(actual.length, expected.length, `diagnostics:\n${shown}`);
  expected.forEach((e, i) => {
    const d = actual[i]!;
    assert.equal(`${d.file}:${d.line}:${d.column}`, e.at, shown);
    if (typeof e.phrase === 'string') assert.ok(d.message.includes(e.phrase), `"${d.message}" lacks "${e.phrase}"`);
    else assert.match(d.message, e.phrase);
    if (e.hint !== undefined) {
      if (typeof e.hint === 'string') assert.ok(d.hint?.includes(e.hint), `hint "${d.hint}" lacks "${e.hint}"`);
      else assert.match(d.hint ?? '', e.hint);
    }
  });
}

const cases: Record<string, Expected[]> = {
  'syntax.yaml': [{ at: 'syntax.yaml:5:31', phrase: 'YAML syntax error: Flow sequence', hint: 'indentation' }],
  'duplicate-key.yaml': [{ at: 'duplicate-key.yaml:4:3', phrase: 'duplicate key `lr`' }],
  'unknown-top-key.yaml': [{ at: 'unknown-top-key.yaml:2:1', phrase: 'unknown key `stagse` in the pipeline', hint: 'did you mean `stages`?' }],
  'unknown-stage-key.yaml': [{ at: 'unknown-stage-key.yaml:5:5', phrase: 'unknown key `input` in stage `ingest`', hint: 'did you mean `inputs`?' }],
  'param-typo.yaml': [{ at: 'param-typo.yaml:8:7', phrase: /unknown param `shard_sise`.*expected one of: shard_size, compression/, hint: 'did you mean `shard_size`?' }],
  'wrong-type.yaml': [{ at: 'wrong-type.yaml:7:27', phrase: 'param `shard_size` of stage `records` (kind `toy.write`) must be an integer, got string "big"' }],
  'missing-input.yaml': [{ at: 'missing-input.yaml:6:5', phrase: 'missing required input `samples`' }],
  'unknown-kind.yaml': [{ at: 'unknown-kind.yaml:4:11', phrase: 'unknown stage kind `toy.ingset`', hint: 'did you mean `toy.ingest`?' }],
  'unknown-input.yaml': [{ at: 'unknown-input.yaml:7:7', phrase: 'kind `toy.ingest` has no input `rooot`', hint: 'did you mean `root`?' }],
  'missing-stage-ref.yaml': [{ at: 'missing-stage-ref.yaml:6:24', phrase: 'refers to unknown stage `ingst`', hint: 'did you mean `ingest`?' }],
  'missing-output-ref.yaml': [{ at: 'missing-output-ref.yaml:7:16', phrase: 'stage `ingest` (kind `toy.ingest`) has no output `indx`; its outputs: index, report', hint: 'did you mean `index`?' }],
  'missing-param-ref.yaml': [{ at: 'missing-param-ref.yaml:7:21', phrase: 'reference to unknown param `params.data.rot`', hint: 'did you mean `root`?' }],
  'cycle.yaml': [{ at: 'cycle.yaml:5:24', phrase: 'dependency cycle: a → c → b → a', hint: /a → c at cycle\.yaml:5:24; c → b at cycle\.yaml:12:13; b → a at cycle\.yaml:7:10/ }],
  'param-cycle.yaml': [{ at: 'param-cycle.yaml:3:6', phrase: 'param reference cycle: a → b → c.x → a', hint: /b at param-cycle\.yaml:4:6; c\.x at param-cycle\.yaml:6:8/ }],
  'enum.yaml': [{ at: 'enum.yaml:8:20', phrase: 'must be one of "none", "gzip", "zlib", got string "gzp"', hint: 'did you mean `gzip`?' }],
  'via-param.yaml': [
    { at: 'via-param.yaml:8:37', phrase: /unknown param `sede`.*\(value from param `train\.sede`\)/, hint: 'did you mean `seed`?' },
    { at: 'via-param.yaml:8:37', phrase: /param `epochs` .* must be an integer, got string "three" \(value from param `train\.epochs`\)/ },
  ],
  'bad-name.yaml': [{ at: 'bad-name.yaml:1:7', phrase: '`name` must match pattern', hint: 'lowercase letters' }],
  'stage-ref-in-params.yaml': [{ at: 'stage-ref-in-params.yaml:3:10', phrase: '`${stages.ingest.outs.index}` cannot be used in `params.index`', hint: 'only in inputs, run, deps' }],
  'own-output.yaml': [
    { at: 'own-output.yaml:4:10', phrase: 'stage `report` declares no output `reprot`', hint: 'did you mean `report`?' },
    { at: 'own-output.yaml:6:13', phrase: 'stage `report` needs unknown stage `ingset`' },
  ],
  'mixed-input.yaml': [{ at: 'mixed-input.yaml:6:24', phrase: 'either one stage output reference or a path, not a mix' }],
  // Several independent mistakes in one file are all reported, in source order.
  'many.yaml': [
    { at: 'many.yaml:8:5', phrase: 'unknown key `parms` in stage `ingest`', hint: 'did you mean `params`?' },
    { at: 'many.yaml:14:18', phrase: 'param `optimizer` of stage `train` (kind `toy.train`) must be one of "adam", "sgd"', hint: 'did you mean `adam`?' },
    { at: 'many.yaml:15:18', phrase: 'param `size.1` of stage `train` (kind `toy.train`) must be an integer, got string "x"' },
  ],
};

for (const [file, expected] of Object.entries(cases)) {
  test(`bad pipeline ${file}`, () => {
    expectDiagnostics(diagnosticsOf(file), expected);
  });
}

test('model.build input_size not divisible by 2^depth is refused at the value, with the depth it was checked against', () => {
  const diagnostics = diagnosticsOf('indivisible-size.yaml', [], withModelBuild);
  expectDiagnostics(diagnostics, [
    {
      at: 'indivisible-size.yaml:6:19',
      phrase: 'param `input_size` of stage `model` (kind `model.build`) [100, 100] must be divisible by 2^3 = 8 (depth)',
      hint: /^nearest multiples of 8: 100 → 96 or 104$/,
    },
  ]);
  assert.match(formatDiagnostic(diagnostics[0]!), /indivisible-size\.yaml:6:19: error: .*input_size.* \[100, 100\] must be divisible by 2\^3 = 8 \(depth\)/);
  // The depth the rule uses is the one set (here through --set), else the schema default.
  expectDiagnostics(diagnosticsOf('indivisible-size.yaml', ['stages.model.params.input_size=[96, 96]', '+stages.model.params.depth=6'], withModelBuild), [
    { at: '<--set>:1:32', phrase: '[96, 96] must be divisible by 2^6 = 64 (depth)', hint: 'nearest multiples of 64: 96 → 64 or 128' },
  ]);
  const ok = (size: string, depth: string): void => {
    loadPipelineFromText(`name: x\nstages:\n  model: { kind: model.build, params: { input_size: ${size}, in_channels: 3, classes: 1${depth} } }\n`, 'inline.yaml', { baseDir: badDir, catalog: withModelBuild });
  };
  ok('[96, 128]', '');
  ok('[100, 100]', ', depth: 2');
  assert.throws(() => ok('[96, 100]', ', depth: 3'), (e: unknown) => e instanceof PipelineError && /\[96, 100\] must be divisible by 2\^3 = 8/.test(e.message));
});

test('a missing pipeline file is a diagnostic, not a crash', () => {
  expectDiagnostics(diagnosticsOf('nope.yaml'), [{ at: 'nope.yaml:1:1', phrase: 'cannot read the pipeline file: no such file' }]);
});

test('--set of a key that does not exist is refused, naming the override and the nearest key', () => {
  expectDiagnostics(diagnosticsOf('set-target.yaml', ['train.epochs=3', 'train.lrr=1e-4']), [
    { at: '<--set>:2:7', phrase: '--set train.lrr=1e-4: no key `lrr` in `train`', hint: /did you mean `lr`\?.*\+train\.lrr=/ },
  ]);
});

test('--set with `+` on an existing key is refused', () => {
  expectDiagnostics(diagnosticsOf('set-target.yaml', ['+train.lr=2']), [{ at: '<--set>:1:8', phrase: '`train.lr` already exists', hint: 'drop the `+`' }]);
});

test('--set with a malformed path or value is refused at the position in the argument', () => {
  expectDiagnostics(diagnosticsOf('set-target.yaml', ['train..lr=1', 'train.lr', 'train.lr=[1, 2']), [
    { at: '<--set>:1:7', phrase: 'empty segment in key `train..lr`' },
    { at: '<--set>:2:1', phrase: 'expected `key.path=value`' },
    { at: '<--set>:3:15', phrase: 'the value is not valid YAML: Flow sequence must end with a ]' },
  ]);
});

test('--set into a scalar, or past the end of a list, is refused', () => {
  expectDiagnostics(diagnosticsOf('set-target.yaml', ['train.lr.x=1', 'stages.ingest.inputs.root.0=a']), [
    { at: '<--set>:1:7', phrase: '`train.lr` is a number, not a map or list' },
    { at: '<--set>:2:22', phrase: '`stages.ingest.inputs.root` is a string, not a map or list' },
  ]);
});

test('a --set value of the wrong type is reported at the override, not in the YAML', () => {
  expectDiagnostics(diagnosticsOf('set-target.yaml', ['stages.records.params.shard_size=abc', 'stages.records.params.compression=zip']), [
    { at: '<--set>:1:34', phrase: 'param `shard_size` of stage `records` (kind `toy.write`) must be an integer, got string "abc"' },
    { at: '<--set>:2:35', phrase: 'must be one of "none", "gzip", "zlib", got string "zip"' },
  ]);
});

test('--set `params.` prefix hints that paths are relative to params', () => {
  const [d] = diagnosticsOf('set-target.yaml', ['params.train.lr=1']);
  assert.equal(d?.file, '<--set>');
  assert.match(d?.hint ?? '', /relative to params: write train\.lr=/);
});

test('parseOverride throws a PipelineError for a malformed argument', () => {
  assert.throws(() => parseOverride('no-equals-sign'), (e: unknown) => e instanceof PipelineError && e.diagnostics[0]!.file === '<--set>');
});

function textDiagnostics(text: string): Diagnostic[] {
  try {
    loadPipelineFromText(text, 'inline.yaml', { baseDir: badDir, catalog: toyCatalog });
  } catch (error) {
    assert.ok(error instanceof PipelineError);
    return error.diagnostics;
  }
  assert.fail('loaded without an error');
}

test('inline mistakes: empty stage, unknown reference namespace, self reference, escaping outside the output folder', () => {
  expectDiagnostics(textDiagnostics('name: x\nstages:\n  a:\n'), [{ at: 'inline.yaml:3:5', phrase: '`stages.a` must be a map, got null' }]);
  expectDiagnostics(textDiagnostics('name: x\nstages:\n  a: { run: "echo ${param.x}" }'), [
    { at: 'inline.yaml:3:13', phrase: 'unknown reference `${param.x}`', hint: 'did you mean `params`?' },
  ]);
  expectDiagnostics(textDiagnostics('name: x\nstages:\n  a: { kind: toy.ingest, inputs: { root: "${stages.a.outs.index}" } }'), [
    { at: 'inline.yaml:3:42', phrase: 'dependency cycle: a → a' },
  ]);
  expectDiagnostics(textDiagnostics('name: x\nstages:\n  a: { run: "x", outs: { o: ../up.txt } }'), [
    { at: 'inline.yaml:3:29', phrase: 'must be a relative file name inside the stage\'s output folder' },
  ]);
  expectDiagnostics(textDiagnostics('name: x\nparams: { t: 3 }\nstages:\n  a: { kind: hparams, params: "${params.t}" }'), [
    { at: 'inline.yaml:4:31', phrase: 'the params of stage `a` must be a map, but `${params.t}` is a number (3)' },
  ]);
});

test('an unquoted reference in a flow map is a YAML error with a hint to quote it', () => {
  expectDiagnostics(textDiagnostics('name: x\nparams: { n: 1 }\nstages:\n  s: { kind: hparams, params: { epochs: ${params.n} } }\n'), [
    { at: 'inline.yaml:4:42', phrase: 'YAML syntax error', hint: 'quote references that start a value' },
  ]);
});
