// The set-up that `npm start` and `npm test` share: npm packages, the build, the
// Debian packages, the workers' Python and the face models. Each step checks
// before it acts, so a second run installs nothing and takes a second or two.
// On the terminal each step is one line (what, how long); what the installers
// print goes to a log file, whose last lines are shown when a step fails.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Every Debian package the project uses, in one place (`.ci/run` and the README
 * read it from here too). `model`: what the workers and the install-time model
 * conversion import. `test`: what the browser and multi-instance tests start,
 * and the model's lint and type check (run under /usr/bin/python3).
 */
export const SYSTEM_PACKAGES = {
  model: ['python3-opencv', 'python3-numpy', 'python3-onnx'],
  test: ['chromium', 'firefox-esr', 'nginx-light', 'redis-server', 'fonts-nanum', 'flake8', 'mypy', 'python3-websockets'],
};

export const LOG_DIR = path.join(root, '.jipjung');
export const LOG_FILE = path.join(LOG_DIR, 'setup.log');

export class StepError extends Error {
  constructor(message, { retry, logTail } = {}) {
    super(message);
    this.name = 'StepError';
    this.retry = retry;
    this.logTail = logTail;
  }
}

/** One-line-per-step reporter writing to `out` (a stream). */
export class Steps {
  constructor(out = process.stdout) {
    this.out = out;
    this.tty = Boolean(out.isTTY);
    fs.mkdirSync(LOG_DIR, { recursive: true });
    this.logFd = fs.openSync(LOG_FILE, 'a');
    fs.writeSync(this.logFd, `\n==== ${new Date().toISOString()} ${process.argv.slice(1).join(' ')}\n`);
  }

  log(text) {
    fs.writeSync(this.logFd, text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Runs `fn`; prints `✓ title — detail (1.2 s)`. `fn` returns the detail. */
  async run(title, fn) {
    const started = performance.now();
    if (this.tty) this.out.write(`  … ${title}`);
    this.log(`---- ${title}`);
    const clear = () => {
      if (this.tty) this.out.write('\r\x1b[2K');
    };
    try {
      const detail = await fn();
      clear();
      const seconds = (performance.now() - started) / 1000;
      this.out.write(`  ✓ ${title}${detail ? ` — ${detail}` : ''} (${seconds.toFixed(1)} s)\n`);
      return detail;
    } catch (err) {
      clear();
      this.out.write(`  ✗ ${title}: ${err.message}\n`);
      if (err.logTail) this.out.write(`    last lines of ${path.relative(process.cwd(), LOG_FILE) || LOG_FILE}:\n${indent(err.logTail)}\n`);
      if (err.retry) this.out.write(`    to retry: ${err.retry}\n`);
      throw err;
    }
  }

  /** A command whose output goes to the log; throws a StepError with the log's tail. */
  exec(cmd, args, { env, retry } = {}) {
    this.log(`$ ${cmd} ${args.join(' ')}`);
    const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', this.logFd, this.logFd], env: env ?? process.env });
    if (r.status !== 0) {
      const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
      throw new StepError(`\`${cmd} ${args.join(' ')}\` failed (${why})`, { retry: retry ?? `${cmd} ${args.join(' ')}`, logTail: tail(LOG_FILE, 15) });
    }
  }

  warn(text) {
    this.out.write(`  ! ${text}\n`);
    this.log(`! ${text}`);
  }
}

function indent(text) {
  return text
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');
}

function tail(file, n) {
  const text = fs.readFileSync(file, 'utf8');
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

export const mtime = (p) => (fs.existsSync(p) ? fs.statSync(p).mtimeMs : 0);

export function newestUnder(dir, suffix = '') {
  let newest = 0;
  if (!fs.existsSync(dir)) return newest;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestUnder(full, suffix));
    else if (entry.name.endsWith(suffix)) newest = Math.max(newest, mtime(full));
  }
  return newest;
}

/** The newest mtime among `paths`: files, and directories by everything under them. */
export const newestOf = (paths) =>
  Math.max(0, ...paths.map((p) => (fs.existsSync(p) && fs.statSync(p).isDirectory() ? newestUnder(p) : mtime(p))));

/**
 * When tsc last wrote output under `outDir`: its newest emitted .js file, not
 * its .tsbuildinfo, which a type check with --noEmit rewrites without
 * emitting anything. 0 when nothing was emitted.
 */
export const emittedAt = (outDir) => newestUnder(outDir, '.js');

/** Whether tsc's output under `outDir` is older than its newest input (`inputsAt`, an mtime in ms). */
export const stale = (outDir, inputsAt) => emittedAt(outDir) < inputsAt;

const isRoot = () => process.getuid?.() === 0;
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** The packages of `names` that dpkg does not list as installed; null when this is not a dpkg system. */
export function missingPackages(names) {
  if (!has('dpkg-query')) return null;
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\\n', ...names], { encoding: 'utf8' });
  const installed = new Set(
    (r.stdout ?? '')
      .split('\n')
      .filter((l) => l.endsWith(' installed'))
      .map((l) => l.split(' ')[0]),
  );
  return names.filter((n) => !installed.has(n));
}

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

/**
 * Installs the missing ones of `names` with apt-get when root. Returns what is
 * still missing (with why) instead of throwing, so that the caller decides
 * whether that is fatal.
 */
function installPackages(steps, names) {
  const missing = missingPackages(names);
  if (missing === null) return { installed: [], missing: [], reason: 'not a Debian system: dpkg-query not found' };
  if (missing.length === 0) return { installed: [], missing: [] };
  if (!isRoot() || !has('apt-get')) {
    return { installed: [], missing, reason: `not root: run \`sudo apt-get install -y ${missing.join(' ')}\`` };
  }
  steps.exec('apt-get', ['update', '-q'], { env: APT_ENV, retry: 'apt-get update' });
  const install = (list) =>
    spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...list], {
      stdio: ['ignore', steps.logFd, steps.logFd],
      env: APT_ENV,
    }).status === 0;
  if (!install(missing)) {
    // One package that cannot be had must not keep the others out; name it.
    for (const name of missing) install([name]);
  }
  const still = missingPackages(missing);
  return {
    installed: missing.filter((n) => !still.includes(n)),
    missing: still,
    reason: still.length ? `apt-get could not install them (see ${LOG_FILE}); retry with \`apt-get install -y ${still.join(' ')}\`` : undefined,
  };
}

function ensureNodeModules(steps) {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  if (mtime(marker) >= mtime(path.join(root, 'package-lock.json')) && mtime(marker) >= mtime(path.join(root, 'package.json'))) {
    return 'up to date';
  }
  steps.exec('npm', ['install', '--no-audit', '--no-fund'], { retry: 'npm install' });
  return 'installed';
}

function ensureBuild(steps) {
  if (!stale(path.join(root, 'dist'), newestOf([path.join(root, 'src'), path.join(root, 'tsconfig.json')]))) return 'up to date';
  steps.exec(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { retry: 'npm run build' });
  return 'built';
}

async function ensurePython(steps) {
  const { findPython, canRunModel, PythonNotFoundError } = await import(path.join(root, 'dist', 'ipc', 'python.js'));
  const result = installPackages(steps, SYSTEM_PACKAGES.model);
  try {
    const python = findPython(process.env.PYTHON);
    if (canImport(python, 'onnx')) return { python, detail: describe(python, result) };
    if (!python.startsWith(path.join(root, '.venv'))) throw new PythonNotFoundError('no onnx');
  } catch (err) {
    if (!(err instanceof PythonNotFoundError) || process.env.PYTHON) throw err;
  }
  // Not Debian, or not root: a virtual environment with pip.
  const venv = path.join(root, '.venv');
  const retry = `python3 -m venv ${venv} && ${venv}/bin/pip install -r model/requirements.txt`;
  if (!fs.existsSync(path.join(venv, 'bin', 'python3'))) {
    steps.exec('python3', ['-m', 'venv', venv], {
      retry: `${retry}  (or, as root on Debian: apt-get install -y ${SYSTEM_PACKAGES.model.join(' ')})`,
    });
  }
  steps.exec(path.join(venv, 'bin', 'pip'), ['install', '-r', path.join(root, 'model', 'requirements.txt')], { retry });
  const python = findPython();
  if (!canRunModel(python) || !canImport(python, 'onnx')) throw new StepError(`${python} still cannot import cv2, numpy and onnx`, { retry });
  return { python, detail: `${python} (virtual environment)` };
}

function canImport(python, module) {
  return spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

function describe(python, result) {
  return result.installed.length ? `${python}, installed ${result.installed.join(' ')}` : python;
}

async function ensureFaceModels(steps, python) {
  const { ensureFaceModels: ensure } = await import(path.join(root, 'scripts', 'face-models.mjs'));
  return await ensure({ root, python, log: (msg) => steps.log(msg), logFd: steps.logFd });
}

/**
 * Runs every set-up step. `forTests` also installs the test tier's Debian
 * packages; one that cannot be installed is named, and the run goes on so that
 * the tests that need it fail with its name and the rest still run.
 */
export async function prepare({ forTests = false, out = process.stdout } = {}) {
  const steps = new Steps(out);
  out.write(`jipjung set-up (installer output: ${path.relative(process.cwd(), LOG_FILE) || LOG_FILE})\n`);
  await steps.run('npm packages', () => ensureNodeModules(steps));
  await steps.run('TypeScript build', () => ensureBuild(steps));
  let python;
  await steps.run('Python for the model workers', async () => {
    const r = await ensurePython(steps);
    python = r.python;
    return r.detail;
  });
  await steps.run('face models', () => ensureFaceModels(steps, python));
  let missingForTests = [];
  if (forTests) {
    await steps.run('packages for the tests', () => {
      const r = installPackages(steps, SYSTEM_PACKAGES.test);
      missingForTests = r.missing;
      if (r.missing.length) steps.warn(`missing ${r.missing.join(', ')}: ${r.reason}; the tests that need them will fail`);
      if (r.installed.length) return `installed ${r.installed.join(' ')}`;
      return r.missing.length ? `${r.missing.length} missing` : 'all present';
    });
  }
  return { python, missingForTests };
}
