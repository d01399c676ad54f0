#!/usr/bin/env node
// `npm run bench -- [options]`: prepare the server (install, build, Python) as `npm start` does,
// build the benchmark (bench/src → bench/dist), then run it. `npm run bench -- --help` for the options.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { emittedAt, newestOf, root, stale } from './setup.mjs';

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run([path.join(root, 'scripts', 'start.mjs'), '--prepare-only']);
// The bench imports the server's compiled modules: a newer server build is an input too.
const inputsAt = Math.max(newestOf([path.join(root, 'bench', 'src'), path.join(root, 'bench', 'tsconfig.json')]), emittedAt(path.join(root, 'dist')));
if (!fs.existsSync(path.join(root, 'bench', 'dist', 'cli.js')) || stale(path.join(root, 'bench', 'dist'), inputsAt)) {
  process.stderr.write('[jipjung] building the benchmark\n');
  run([path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'bench', 'tsconfig.json')]);
}
run([path.join(root, 'bench', 'dist', 'cli.js'), ...process.argv.slice(2)]);
