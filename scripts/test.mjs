#!/usr/bin/env node
// `npm test`: set up (scripts/setup.mjs, with the test tier's Debian packages),
// then the type check, the Python tests and the TypeScript tests. Every tier
// runs even when an earlier one failed; the last line counts all of them:
// `N passed, N failed, N skipped`. A tier that crashed without a count, a file
// that failed to load, a failed hook and an unhandled error each count as failed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prepare, root } from './setup.mjs';
import { countUnittest } from './test-count.mjs';

const total = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
const add = (label, c) => {
  total.passed += c.passed;
  total.failed += c.failed;
  total.skipped += c.skipped;
  lines.push(`${label}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${c.note ? ` (${c.note})` : ''}`);
};

/** Runs a command with its output shown; resolves its exit status and what it printed. */
function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

let setupFailed = false;
try {
  const { missingForTests } = await prepare({ forTests: true });
  if (missingForTests.length) lines.push(`set-up: missing ${missingForTests.join(', ')}`);
} catch (err) {
  setupFailed = true;
  add('set-up', { passed: 0, failed: 1, skipped: 0, note: err.message });
}

if (!setupFailed) {
  const tsc = await run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.test.json']);
  add('type check', tsc.status === 0 ? { passed: 1, failed: 0, skipped: 0 } : { passed: 0, failed: 1, skipped: 0 });

  const py = await run(process.execPath, [path.join(root, 'scripts', 'python.mjs'), '-m', 'unittest', 'discover', '-s', 'model/tests', '-t', 'model']);
  add('python', countUnittest(py.text, py.status));

  const countFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-test-')), 'count.json');
  const vitest = await run(process.execPath, [path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...process.argv.slice(2)], {
    JIPJUNG_TEST_COUNT_FILE: countFile,
  });
  let c;
  try {
    c = JSON.parse(fs.readFileSync(countFile, 'utf8'));
  } catch {
    c = { passed: 0, failed: 1, skipped: 0, note: `vitest gave no count, exit ${vitest.status}` };
  }
  fs.rmSync(path.dirname(countFile), { recursive: true, force: true });
  if (vitest.status !== 0 && c.failed === 0) c = { ...c, failed: 1, note: `vitest exited ${vitest.status}` };
  add('vitest', c);
}

process.stdout.write(`\n${lines.join('\n')}\n${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
process.exit(total.failed > 0 ? 1 : 0);
