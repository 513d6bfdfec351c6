// The kernel tests again with the native convolutions turned off (FLOW_NATIVE_CONV=0): the XNNPACK-composed
// gradient kernels are what every machine without a C++ toolchain or OpenBLAS trains on, so they must stay
// correct too. Runs the sibling test files in a child `node --test` (same loader as this file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const extension = path.extname(fileURLToPath(import.meta.url));

test('wasm kernel tests pass on the XNNPACK-composed kernels (FLOW_NATIVE_CONV=0)', () => {
  const files = ['wasm-kernels.test', 'wasm-conv3d.test'].map((name) => path.join(here, `${name}${extension}`));
  // Without NODE_TEST_CONTEXT (set for the runner's own children) the child prints plain TAP to read here.
  const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
  const result = spawnSync(process.execPath, [...process.execArgv, '--test', '--test-reporter=tap', '--test-concurrency=1', ...files], {
    env: { ...env, FLOW_NATIVE_CONV: '0' },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const summary = result.stdout.split('\n').filter((line) => /^# (pass|fail)/.test(line)).join(', ');
  assert.equal(result.status, 0, `${summary}\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-2000)}`);
  assert.match(summary, /# fail 0/);
});
