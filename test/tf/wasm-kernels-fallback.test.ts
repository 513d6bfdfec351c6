// The kernel tests again on the paths other machines take, each in a child `node --test` (same loader as this
// file) over the sibling test files:
//  - FLOW_NATIVE_PORTABLE=1: the addon's portable C++ GEMM micro-kernel and no direct kernels, which is what a
//    CPU without AVX2+FMA (or a non-x86 one) runs;
//  - FLOW_NATIVE_CONV=0: the XNNPACK-composed gradient kernels, which is what every machine where the addon
//    could not be built trains on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const extension = path.extname(fileURLToPath(import.meta.url));

function runKernelTests(extraEnv: Record<string, string>): void {
  const files = ['wasm-kernels.test', 'wasm-conv3d.test'].map((name) => path.join(here, `${name}${extension}`));
  // Without NODE_TEST_CONTEXT (set for the runner's own children) the child prints plain TAP to read here.
  const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
  const result = spawnSync(process.execPath, [...process.execArgv, '--test', '--test-reporter=tap', '--test-concurrency=1', ...files], {
    env: { ...env, ...extraEnv },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const summary = result.stdout.split('\n').filter((line) => /^# (pass|fail)/.test(line)).join(', ');
  assert.equal(result.status, 0, `${summary}\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-2000)}`);
  assert.match(summary, /# fail 0/);
}

test('wasm kernel tests pass on the addon\'s portable micro-kernel, without direct kernels (FLOW_NATIVE_PORTABLE=1)', () => {
  runKernelTests({ FLOW_NATIVE_PORTABLE: '1' });
});

test('wasm kernel tests pass on the XNNPACK-composed kernels (FLOW_NATIVE_CONV=0)', () => {
  runKernelTests({ FLOW_NATIVE_CONV: '0' });
});
