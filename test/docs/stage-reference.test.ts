// docs/stages.md is generated from the stage registry and the params schemas; this keeps it from drifting.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { readRegistryEntries, renderStageReference, stageReferenceFile } from '../../scripts/stage-reference.js';
import { repoRoot } from '../helpers/paths.js';

test('docs/stages.md matches the stage modules and their params schemas', () => {
  const entries = readRegistryEntries(repoRoot);
  assert.ok(entries.length >= 14, `expected every built-in stage kind, found ${entries.length}`);
  const expected = renderStageReference(entries);
  const actual = fs.readFileSync(stageReferenceFile(repoRoot), 'utf8');
  assert.equal(actual, expected, 'docs/stages.md is stale: run `npm run build && node dist/scripts/stage-reference.js`');
});

test('the reference names every params schema property', () => {
  const entries = readRegistryEntries(repoRoot);
  const text = renderStageReference(entries);
  for (const entry of entries) {
    const properties = Object.keys((entry.paramsSchema.properties ?? {}) as object);
    for (const name of properties) assert.ok(text.includes(`| \`${name}\``), `${entry.kind}.${name} missing from the reference`);
  }
});
