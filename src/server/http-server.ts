import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { directoryFiles, sendFile } from './static-files.js';

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/**
 * The policy the demo page and the dashboard are written for: every script,
 * style sheet and connection from the page's own origin, no inline script or
 * style, the frame encoder in a worker made from a blob: URL, the camera
 * preview from a media stream. No page of ours may be framed by another
 * site (clickjacking of the camera consent).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Sent with every HTTP answer, JSON and errors included. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  // For browsers that predate frame-ancestors.
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'camera=(self), microphone=(), geolocation=()',
});

/**
 * The request target as a URL, or null when it is not one: `new URL('//', base)`
 * throws, and a throw in a request or upgrade handler would end the process.
 */
export function requestUrl(req: IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return null;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

/**
 * A small router over node:http: exact paths for GET/HEAD (a key ending in
 * `/*` matches every path below it), then the files of `webRoot`
 * (static-files.ts). Every answer carries the security headers.
 */
export function createHttpServer(routes: Record<string, Route>, webRoot: string, headersTimeoutMs = 10_000): http.Server {
  const files = directoryFiles(webRoot);
  // Slow-loris guard: headers must arrive in time, checked often enough to matter.
  // 16 KiB of headers is plenty for a browser; more is an attack on memory.
  const server = http.createServer(
    {
      maxHeaderSize: 16 * 1024,
      headersTimeout: headersTimeoutMs,
      requestTimeout: Math.max(30_000, headersTimeoutMs),
      connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
    },
    (req, res) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const url = requestUrl(req);
    if (!url) {
      sendJson(res, 400, { error: 'bad_request' });
      return;
    }
    const { pathname } = url;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const prefix = Object.keys(routes).find((key) => key.endsWith('/*') && pathname.startsWith(key.slice(0, -1)));
    const route = routes[pathname] ?? (prefix ? routes[prefix] : undefined);
    if (route) {
      Promise.resolve(route(req, res)).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { error: 'internal' });
        else res.destroy();
      });
      return;
    }
    const file = files.get(pathname);
    if (file) {
      sendFile(req, res, file);
      return;
    }
    sendJson(res, 404, { error: 'not_found' });
  },
  );
  server.maxHeadersCount = 100;
  return server;
}
