#!/usr/bin/env node
// `npm start`: install what is missing, build, then serve.
// `node scripts/start.mjs --prepare-only`: install and build, nothing else (used by `npm test`).
// Quick on a second run: each step checks before it acts.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const prepareOnly = args.includes('--prepare-only');
const serverArgs = args.filter((a) => a !== '--prepare-only');

function step(message) {
  process.stderr.write(`[jipjung] ${message}\n`);
}

function run(cmd, cmdArgs, opts = {}) {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${cmdArgs.join(' ')} failed (exit ${r.status ?? r.signal})`);
  }
}

const mtime = (p) => (fs.existsSync(p) ? fs.statSync(p).mtimeMs : 0);

function newestUnder(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(full) : mtime(full));
  }
  return newest;
}

function ensureNodeModules() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  if (mtime(marker) >= mtime(path.join(root, 'package-lock.json')) && mtime(marker) >= mtime(path.join(root, 'package.json'))) return;
  step('installing npm packages');
  run('npm', ['install', '--no-audit', '--no-fund']);
}

function ensureBuild() {
  const out = path.join(root, 'dist', '.tsbuildinfo');
  if (mtime(out) >= newestUnder(path.join(root, 'src')) && mtime(out) >= mtime(path.join(root, 'tsconfig.json'))) return;
  step('building');
  run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
}

async function ensurePython() {
  const { findPython, canRunModel, PythonNotFoundError } = await import(path.join(root, 'dist', 'ipc', 'python.js'));
  try {
    return findPython(process.env.PYTHON);
  } catch (err) {
    if (!(err instanceof PythonNotFoundError) || process.env.PYTHON) throw err;
  }
  const isRoot = process.getuid?.() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (isRoot && hasApt) {
    step('installing python3-opencv and python3-numpy with apt-get');
    run('apt-get', ['update'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    run('apt-get', ['install', '-y', '--no-install-recommends', 'python3-opencv', 'python3-numpy'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } else {
    const venv = path.join(root, '.venv');
    step(`creating a virtual environment in ${venv} and installing model/requirements.txt with pip`);
    const r = spawnSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    if (r.status !== 0) {
      throw new Error(
        'cannot install the model\'s Python dependencies: not root on Debian (for apt-get) and `python3 -m venv` failed. ' +
          'Install python3-opencv and python3-numpy, or OpenCV and numpy for a Python 3.11+ and set PYTHON.',
      );
    }
    run(path.join(venv, 'bin', 'pip'), ['install', '-r', path.join(root, 'model', 'requirements.txt')]);
  }
  const python = findPython();
  if (!canRunModel(python)) throw new Error(`${python} still cannot import cv2 and numpy`);
  return python;
}

try {
  ensureNodeModules();
  ensureBuild();
  const python = await ensurePython();
  if (prepareOnly) process.exit(0);
  const { SERVER_NODE_FLAGS } = await import(path.join(root, 'dist', 'node-flags.js'));
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, path.join(root, 'dist', 'main.js'), ...serverArgs], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PYTHON: python },
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} catch (err) {
  step(`error: ${err.message}`);
  process.exit(1);
}
