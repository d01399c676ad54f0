#!/usr/bin/env node
// Runs the workers' Python interpreter (the same one the server picks) with the given arguments.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { findPython, MODEL_DIR } = await import(path.join(root, 'dist', 'ipc', 'python.js'));
const python = findPython(process.env.PYTHON);
const r = spawnSync(python, process.argv.slice(2), {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PYTHONPATH: [MODEL_DIR, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter), PYTHONDONTWRITEBYTECODE: '1' },
});
process.exit(r.status ?? 1);
