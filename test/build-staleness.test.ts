import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// scripts/setup.mjs decides whether `npm start`, `npm test` and the bench rebuild TypeScript.
interface Setup {
  stale: (outDir: string, inputsAt: number) => boolean;
  emittedAt: (outDir: string) => number;
  newestUnder: (dir: string) => number;
  mtime: (p: string) => number;
}
const setupModule: string = '../scripts/setup.mjs';
const { stale, emittedAt, newestUnder, mtime } = (await import(setupModule)) as Setup;

describe('stale build output', () => {
  let dir: string;
  const at = (rel: string, seconds: number) => {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (!fs.existsSync(file)) fs.writeFileSync(file, '');
    fs.utimesSync(file, seconds, seconds);
    return file;
  };
  const sources = () => newestUnder(path.join(dir, 'src'));

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-stale-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is stale when a source is newer than every emitted file, fresh once emitted after it', () => {
    at('src/a.ts', 1000);
    at('src/deep/b.ts', 2000);
    at('dist/a.js', 1500);
    expect(stale(path.join(dir, 'dist'), sources())).toBe(true);
    at('dist/deep/b.js', 2500);
    expect(stale(path.join(dir, 'dist'), sources())).toBe(false);
  });

  it('does not take a type check without output (a newer .tsbuildinfo) for a build', () => {
    at('src/a.ts', 2000);
    at('dist/a.js', 1000);
    at('dist/.tsbuildinfo', 3000);
    at('dist/.tsbuildinfo-test', 3000);
    expect(emittedAt(path.join(dir, 'dist'))).toBe(1000 * 1000);
    expect(stale(path.join(dir, 'dist'), sources())).toBe(true);
  });

  it('counts single files among the inputs, and a missing output as stale', () => {
    const config = at('tsconfig.json', 4000);
    at('src/a.ts', 1000);
    at('dist/a.js', 3000);
    expect(stale(path.join(dir, 'dist'), Math.max(sources(), mtime(config)))).toBe(true);
    expect(stale(path.join(dir, 'nothing'), sources())).toBe(true);
  });
});
