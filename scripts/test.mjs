#!/usr/bin/env node
// `npm test`: the set-up (scripts/setup.mjs, with the test packages), the type
// checks (src/ and test/; web/), the model's lint and type check (flake8, mypy),
// the Python tests, the unit tier and the integration tier (the
// `*.integration.test.ts` files; vitest.config.ts). `node scripts/test.mjs
// integration` (`npm run test:integration`): the set-up, the Python tests and the
// integration tier; `node scripts/test.mjs unit`: the unit tier alone, with no
// set-up. Other arguments go to vitest (`npm test -- test/jpeg.test.ts`).
//
// Every step runs even when an earlier one failed; each prints one line, and the
// last line counts all of them: `N passed, N failed, N skipped`. A type check or
// lint counts as one test. A tier that crashed without a count, a file that
// failed to load, a failed hook and an unhandled error each count as failed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prepare, root } from './setup.mjs';
import { countUnittest } from './test-count.mjs';

const TIERS = ['unit', 'integration'];
const args = process.argv.slice(2);
const only = TIERS.includes(args[0]) ? args.shift() : null;
const wants = (tier) => only === null || only === tier;

/** The Debian packages' interpreter: flake8 and mypy are installed for it, and it has cv2 and numpy. */
const SYSTEM_PYTHON = '/usr/bin/python3';

const total = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
const add = (label, c) => {
  total.passed += c.passed;
  total.failed += c.failed;
  total.skipped += c.skipped;
  lines.push(`${label}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${c.note ? ` (${c.note})` : ''}`);
};
const check = (status, note) => (status === 0 ? { passed: 1, failed: 0, skipped: 0 } : { passed: 0, failed: 1, skipped: 0, note });

/** Runs a command with its output shown; resolves its exit status and what it printed. */
function run(cmd, cmdArgs, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, cmdArgs, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      text += d;
    });
    child.stderr.on('data', (d) => {
      process.stderr.write(d);
      text += d;
    });
    child.on('error', (err) => resolve({ status: -1, text: `${text}\n${err.message}` }));
    child.on('close', (status) => resolve({ status, text }));
  });
}

const tsc = (project) => run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project]);

/** A lint under the system Python; a missing module is named, with its package. */
async function pythonLint(module, ...paths) {
  const r = await run(SYSTEM_PYTHON, ['-m', module, ...paths]);
  if (r.status !== 0 && /No module named/.test(r.text)) return check(r.status, `apt-get install -y ${module}`);
  return check(r.status, `exit ${r.status}`);
}

/** One vitest project; its count comes from test/summary-reporter.ts through a file. */
async function vitest(project) {
  const countFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-test-')), 'count.json');
  // Given a file, the other tier has nothing to run: that is not a failure.
  const filter = args.length ? ['--passWithNoTests'] : [];
  const r = await run(process.execPath, [path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--project', project, ...filter, ...args], {
    JIPJUNG_TEST_COUNT_FILE: countFile,
  });
  let c;
  try {
    c = JSON.parse(fs.readFileSync(countFile, 'utf8'));
  } catch {
    c = { passed: 0, failed: 1, skipped: 0, note: `vitest gave no count, exit ${r.status}` };
  }
  fs.rmSync(path.dirname(countFile), { recursive: true, force: true });
  if (r.status !== 0 && c.failed === 0) c = { ...c, failed: 1, note: `vitest exited ${r.status}` };
  return c;
}

let setupFailed = false;
if (wants('integration')) {
  try {
    const { missingForTests } = await prepare({ forTests: true });
    if (missingForTests.length) lines.push(`set-up: missing ${missingForTests.join(', ')}`);
  } catch (err) {
    setupFailed = true;
    add('set-up', { passed: 0, failed: 1, skipped: 0, note: err.message });
  }
}

if (only === null) {
  add('type check', check((await tsc('tsconfig.test.json')).status));
  add('web type check', check((await tsc('tsconfig.web.json')).status));
  // Options for both in setup.cfg; mypy's file list is there too.
  add('flake8', await pythonLint('flake8', 'model'));
  add('mypy', await pythonLint('mypy'));
}

// The Python tests need the set-up's interpreter and face models, so they belong to the integration tier.
if (wants('integration') && !setupFailed) {
  const py = await run(process.execPath, [path.join(root, 'scripts', 'python.mjs'), '-m', 'unittest', 'discover', '-s', 'model/tests', '-t', 'model']);
  add('python', countUnittest(py.text, py.status));
}

if (wants('unit')) add('unit', await vitest('unit'));
if (wants('integration') && !setupFailed) add('integration', await vitest('integration'));

process.stdout.write(`\n${lines.join('\n')}\n${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
process.exit(total.failed > 0 ? 1 : 0);
