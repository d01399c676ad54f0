#!/usr/bin/env node
// Runs the default model alone on the generated, labelled evaluation set
// (model/eval/) and prints the confusion matrix, presence precision/recall,
// roll error and per-frame cost. Extra arguments go to `python -m eval.run`
// (e.g. `npm run eval -- --json`, `--options '{"lookAwaySeconds": 3}'`).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'python.mjs'), '-m', 'eval.run', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
