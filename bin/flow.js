#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript under dist/ (built by `npm install` via the prepare script).
import { main } from '../dist/engine/cli.js';

process.exitCode = await main(process.argv.slice(2));
// Everything main() started has finished. A native runtime that keeps polling the event loop for as long as it is
// loaded (Dawn's dawn.node, once a WebGPU device exists) would keep the process alive forever: exit then. The
// timer is unref'd, so an ordinary run exits as soon as the loop drains, as before.
setTimeout(() => process.exit(), 1000).unref();
