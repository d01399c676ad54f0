#!/usr/bin/env node
// Writes docs/config.md from the configuration schema (run after `npm run build`).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { renderConfigDoc } = await import(path.join(root, 'dist', 'config', 'config-doc.js'));
fs.writeFileSync(path.join(root, 'docs', 'config.md'), renderConfigDoc());
