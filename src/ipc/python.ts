import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { workerEnv } from './worker-env.js';

/** Directory holding the `jipjung_model` package. */
export const MODEL_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'model');
const VENV_PYTHON = path.resolve(MODEL_DIR, '..', '.venv', 'bin', 'python3');

/** Interpreters to try, in order: the project's venv, Debian's system Python, then PATH. */
export function pythonCandidates(configured?: string): string[] {
  if (configured) return [configured];
  return [VENV_PYTHON, '/usr/bin/python3', 'python3'].filter(
    (p, i, all) => all.indexOf(p) === i && (!p.includes('/') || fs.existsSync(p)),
  );
}

/** True when the interpreter imports OpenCV and numpy (in the environment a worker gets). */
export function canRunModel(python: string): boolean {
  const r = spawnSync(python, ['-c', 'import cv2, numpy'], { stdio: 'ignore', timeout: 30_000, env: workerEnv(process.env, []) });
  return r.status === 0;
}

export class PythonNotFoundError extends Error {
  override name = 'PythonNotFoundError';
}

/** The first candidate that can import cv2 and numpy. */
export function findPython(configured?: string): string {
  const candidates = pythonCandidates(configured);
  for (const candidate of candidates) if (canRunModel(candidate)) return candidate;
  throw new PythonNotFoundError(
    `no Python interpreter among ${candidates.join(', ')} can import cv2 and numpy; ` +
      'run `npm start` once to install them (python3-opencv python3-numpy on Debian, or a venv from model/requirements.txt), ' +
      'or set PYTHON',
  );
}
