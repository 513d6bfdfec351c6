// Runs the CLI from source or dist alike: `node --import tsx engine/cli-entry.ts ...` (tests, no build
// needed) or `node dist/engine/cli-entry.js ...`.
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
