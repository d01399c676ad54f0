import path from 'node:path';

/**
 * The environment of a worker process, built name by name rather than
 * inherited: workers decode untrusted images, so a decoder exploit there
 * must find no token-signing key, operations token or store URL to steal.
 * The model's settings reach it as `--options`, not through the
 * environment.
 */

/** Passed on when the server has them: where programs and libraries are, locale, time zone, temporary directory. */
const PASSED = [
  'PATH',
  'LD_LIBRARY_PATH',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  // Python's own, for an interpreter installed outside the usual places.
  'PYTHONHOME',
  'PYTHONNOUSERSITE',
  'PYTHONUTF8',
  'PYTHONIOENCODING',
  'PYTHONFAULTHANDLER',
];

/** Prefixes of settings passed on: locale categories, and the tuning of native thread pools and OpenCV. */
const PASSED_PREFIXES = ['LC_', 'OMP_', 'OPENBLAS_', 'MKL_', 'NUMEXPR_', 'OPENCV_'];

/**
 * One worker per core: native thread pools must not fan out, or the
 * workers fight over the same cores. These win over the server's own.
 */
const FIXED = {
  OMP_NUM_THREADS: '1',
  OPENBLAS_NUM_THREADS: '1',
  MKL_NUM_THREADS: '1',
  NUMEXPR_NUM_THREADS: '1',
  PYTHONUNBUFFERED: '1',
  PYTHONDONTWRITEBYTECODE: '1',
};

const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * `parent` is the server's environment; `pythonPath` the directories the
 * worker imports from, first first (MODEL_PATH, then `model/`), ahead of
 * an inherited PYTHONPATH.
 */
export function workerEnv(parent: NodeJS.ProcessEnv, pythonPath: Array<string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value === undefined) continue;
    if (PASSED.includes(name) || PASSED_PREFIXES.some((p) => name.startsWith(p))) env[name] = value;
  }
  env.PATH ??= DEFAULT_PATH;
  env.PYTHONPATH = [...pythonPath, parent.PYTHONPATH].filter(Boolean).join(path.delimiter);
  return { ...env, ...FIXED };
}
