/**
 * The files the instance serves as they are: the demo page's directory
 * (`web/`), the dashboard page, and the charting library it loads from
 * node_modules. All are small and fixed, so each is read once, when its
 * routes are built, and served from memory; the security headers every
 * answer carries are set by the HTTP server (http-server.ts), not here.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
});

/**
 * Our own pages and scripts change with each deploy: a browser asks again
 * every time (`no-cache` revalidates; it does not forbid keeping).
 */
export const OWN_FILES_CACHE = 'no-cache';
/** A library pinned by the package lock changes only with a deploy that also changes the page. */
export const LIBRARY_CACHE = 'public, max-age=3600';

export interface StaticFile {
  type: string;
  body: Buffer;
  cacheControl: string;
}

/** Answer a GET or HEAD with the file: the same headers for both, the body for GET only. */
export function sendFile(req: IncomingMessage, res: ServerResponse, file: StaticFile): void {
  res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, 'cache-control': file.cacheControl });
  res.end(req.method === 'HEAD' ? undefined : file.body);
}

/** A route that serves one file. */
export const fileRoute =
  (file: StaticFile) =>
  (req: IncomingMessage, res: ServerResponse): void =>
    sendFile(req, res, file);

/** One file with its type from its extension, or null when it cannot be read or has a type we do not serve. */
export function readFile(file: string, cacheControl = OWN_FILES_CACHE): StaticFile | null {
  const type = CONTENT_TYPES[path.extname(file)];
  if (!type) return null;
  try {
    return { type, body: fs.readFileSync(file), cacheControl };
  } catch {
    return null;
  }
}

/**
 * A file of an installed package (`uplot/dist/uPlot.iife.min.js`), found as
 * `import` would find it. Throws when the package is missing: the dashboard
 * cannot work without it, and start-up is the time to say so.
 */
export function packageFile(specifier: string): StaticFile {
  const require = createRequire(import.meta.url);
  const file = readFile(require.resolve(specifier), LIBRARY_CACHE);
  if (!file) throw new Error(`cannot serve ${specifier}`);
  return file;
}

/**
 * The files directly under `root` by URL path (`/app.js`), with `/` for
 * `index.html`: no subdirectories and no dotfiles, so no path of a request
 * can reach anything else.
 */
export function directoryFiles(root: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!fs.existsSync(root)) return files;
  for (const name of fs.readdirSync(root)) {
    const full = path.join(root, name);
    if (name.startsWith('.') || !fs.statSync(full).isFile()) continue;
    const file = readFile(full);
    if (file) files.set(`/${name}`, file);
  }
  const index = files.get('/index.html');
  if (index) files.set('/', index);
  return files;
}
