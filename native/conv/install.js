// npm's install script for the addon: `node-gyp rebuild`, pointed at this Node's own headers when they are
// installed beside it (<prefix>/include/node, as Debian's and nodejs.org's builds ship them). Without that,
// node-gyp downloads the headers from nodejs.org, which a machine that reaches only npm's registry cannot do,
// and the addon would be skipped. The build needs a C++ compiler, make and python3, nothing else (no BLAS).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const prefix = path.resolve(path.dirname(process.execPath), '..');
const args = ['rebuild'];
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
// npm gives scripts the path of its bundled node-gyp; outside npm, the node-gyp on PATH.
const gyp = process.env.npm_config_node_gyp;
const result = gyp
  ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' })
  : spawnSync('node-gyp', args, { stdio: 'inherit', shell: process.platform === 'win32' });
if (result.error) console.error(`flow-native-conv: could not run node-gyp: ${result.error.message}`);
process.exit(result.status ?? 1);
