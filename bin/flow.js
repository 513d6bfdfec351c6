#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript under dist/ (built by `npm install` via the prepare script).
import { main } from '../dist/engine/cli.js';

process.exitCode = await main(process.argv.slice(2));
