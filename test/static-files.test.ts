/**
 * src/server/static-files.ts, the one path every file the instance serves
 * takes: which files of a directory are served, with what type and caching,
 * HEAD without a body, and the security headers on files as on every other
 * answer (through the real HTTP server, in process, on port 0).
 */
import fs from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, SECURITY_HEADERS } from '../src/server/http-server.js';
import { directoryFiles, fileRoute, LIBRARY_CACHE, OWN_FILES_CACHE, packageFile, readFile } from '../src/server/static-files.js';

let root: string;
let server: http.Server;
let base: string;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-static-'));
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>x</title>');
  fs.writeFileSync(path.join(root, 'app.js'), 'export const x = 1;\n');
  fs.writeFileSync(path.join(root, '.env'), 'SECRET=1');
  fs.writeFileSync(path.join(root, 'notes.txt'), 'not a type we serve');
  fs.mkdirSync(path.join(root, 'sub'));
  fs.writeFileSync(path.join(root, 'sub', 'deep.js'), 'nope');
  server = createHttpServer({ '/lib.js': fileRoute(packageFile('uplot/dist/uPlot.iife.min.js')) }, root);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  fs.rmSync(root, { recursive: true, force: true });
});

describe('directoryFiles', () => {
  it('serves the plain files of known types directly under the root, index.html also as /', () => {
    const files = directoryFiles(root);
    expect([...files.keys()].sort()).toEqual(['/', '/app.js', '/index.html']);
    expect(files.get('/')).toBe(files.get('/index.html'));
    expect(files.get('/app.js')).toMatchObject({ type: 'text/javascript; charset=utf-8', cacheControl: OWN_FILES_CACHE });
    expect(directoryFiles(path.join(root, 'missing')).size).toBe(0);
  });

  it('reads nothing it cannot serve', () => {
    expect(readFile(path.join(root, 'notes.txt'))).toBeNull();
    expect(readFile(path.join(root, 'gone.js'))).toBeNull();
    expect(() => packageFile('uplot/dist/no-such-file.js')).toThrow();
  });
});

describe('files over HTTP', () => {
  it('answers GET with the body, type, length and caching, and the security headers', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe(OWN_FILES_CACHE);
    expect(await page.text()).toBe('<!doctype html><title>x</title>');
    const lib = await fetch(`${base}/lib.js`);
    expect(lib.headers.get('cache-control')).toBe(LIBRARY_CACHE);
    expect(Number(lib.headers.get('content-length'))).toBeGreaterThan(20_000);
    for (const r of [page, lib]) {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(r.headers.get(name), `${r.url} ${name}`).toBe(value);
    }
  });

  it('answers HEAD with the same headers and no body', async () => {
    for (const p of ['/app.js', '/lib.js']) {
      const get = await fetch(`${base}${p}`);
      const head = await fetch(`${base}${p}`, { method: 'HEAD' });
      expect(head.status, p).toBe(200);
      expect(head.headers.get('content-length'), p).toBe(get.headers.get('content-length'));
      expect(head.headers.get('content-type'), p).toBe(get.headers.get('content-type'));
      expect(await head.text(), p).toBe('');
    }
  });

  it('serves no dotfile, subdirectory or unknown type', async () => {
    for (const p of ['/.env', '/sub/deep.js', '/notes.txt', '/sub']) {
      const r = await fetch(`${base}${p}`);
      expect(r.status, p).toBe(404);
      expect(r.headers.get('x-content-type-options'), p).toBe('nosniff');
    }
  });
});
