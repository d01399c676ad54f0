#!/usr/bin/env node
// `npm start`: set up what is missing (scripts/setup.mjs), then serve.
// `node scripts/start.mjs --prepare-only`: set up, nothing else (used by `npm run eval`).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { prepare, root } from './setup.mjs';

const args = process.argv.slice(2);
const prepareOnly = args.includes('--prepare-only');
const serverArgs = args.filter((a) => a !== '--prepare-only');

let python;
try {
  ({ python } = await prepare());
} catch {
  process.exit(1); // the failed step has said what failed and how to retry
}
if (prepareOnly) process.exit(0);

const { SERVER_NODE_FLAGS } = await import(path.join(root, 'dist', 'node-flags.js'));
const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, path.join(root, 'dist', 'main.js'), ...serverArgs], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PYTHON: python },
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
