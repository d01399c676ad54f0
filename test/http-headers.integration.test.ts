/**
 * Every HTTP answer carries the security headers (a Content-Security-Policy
 * that the demo page and the dashboard satisfy, nosniff, no framing, no
 * referrer), and a path that is not valid percent-encoding is a bad
 * request, not a server error.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, TEST_DIR, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';

const WEB = path.join(TEST_DIR, '..', 'web');

/** The directives of a Content-Security-Policy header, by name. */
function directives(csp: string | null): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of (csp ?? '').split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) out.set(name, values);
  }
  return out;
}

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1' });
});
afterAll(() => t?.close());

describe('security headers', () => {
  it('are on every answer: pages, scripts, JSON, errors, on both listeners', async () => {
    const answers = [
      await fetch(`${t.base}/`),
      await fetch(`${t.base}/app.js`),
      await fetch(`${t.base}/healthz`),
      await fetch(`${t.base}/nope`),
      await fetch(`${t.base}/`, { method: 'POST' }),
      await fetch(`${t.base}/v1/sessions/x`),
      await fetch(`${t.ops}/dashboard`),
      await fetch(`${t.ops}/dashboard/data`),
      await fetch(`${t.ops}/metrics`),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 404, 405, 404, 200, 200, 200]);
    for (const r of answers) {
      const where = `${r.url} ${r.status}`;
      expect(r.headers.get('x-content-type-options'), where).toBe('nosniff');
      expect(r.headers.get('x-frame-options'), where).toBe('DENY');
      expect(r.headers.get('referrer-policy'), where).toBe('no-referrer');
      const csp = directives(r.headers.get('content-security-policy'));
      expect(csp.get('frame-ancestors'), where).toEqual(["'none'"]);
      expect(csp.get('default-src'), where).toEqual(["'self'"]);
      expect(csp.get('object-src'), where).toEqual(["'none'"]);
      expect(csp.get('base-uri'), where).toEqual(["'none'"]);
    }
  });

  it('the policy allows no inline script or style, and the pages need none', async () => {
    const csp = directives((await fetch(`${t.base}/`)).headers.get('content-security-policy'));
    expect(csp.get('script-src')).toEqual(["'self'"]);
    expect(csp.get('style-src')).toEqual(["'self'"]);
    // The client encodes frames in a worker made from a blob: URL, and streams over the page's own host.
    expect(csp.get('worker-src')).toEqual(["'self'", 'blob:']);
    expect(csp.get('connect-src')).toEqual(["'self'"]);
    for (const name of fs.readdirSync(WEB).filter((f) => f.endsWith('.html'))) {
      const html = fs.readFileSync(path.join(WEB, name), 'utf8');
      expect(html, name).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
      expect(html, name).not.toMatch(/<style\b/i);
      expect(html, name).not.toMatch(/\sstyle=/i);
      expect(html, name).not.toMatch(/\son[a-z]+=/i);
      // Everything a page loads comes from its own origin.
      for (const [, url] of html.matchAll(/(?:src|href)="([^"]+)"/g)) expect(url, `${name}: ${url}`).toMatch(/^(\/|data:,$|#)/);
    }
  });
});

describe('GET /v1/sessions/:id with a broken escape', () => {
  it('answers 400, not 500', async () => {
    for (const id of ['%E0%A4%A', '%', '%ZZ', '%C0%80']) {
      const res = await fetch(`${t.base}/v1/sessions/${id}`);
      expect(res.status, id).toBe(400);
      expect(await res.json(), id).toEqual({ error: 'bad_request', message: 'the session id is not valid percent-encoding' });
    }
    expect((await fetch(`${t.base}/v1/sessions/no%20such`)).status).toBe(404);
  });
});

describe('a request target that is not a URL', () => {
  /** The status line a raw HTTP/1.1 request gets. */
  const raw = (request: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(t.app.port, '127.0.0.1', () => socket.write(request));
      socket.once('data', (d) => {
        resolve(d.toString().split('\r\n')[0]);
        socket.destroy();
      });
      socket.once('error', reject);
    });

  // Regression: `new URL('//', base)` throws, and threw out of the request handler, taking the process down.
  it('gets 400, as a request and as an upgrade, and the instance goes on', async () => {
    for (const target of ['//', '///', '//%', '/\\']) {
      expect(await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`), target).toBe('HTTP/1.1 400 Bad Request');
      const upgrade = `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
      expect(await raw(upgrade), `upgrade ${target}`).toBe('HTTP/1.1 400 Bad Request');
    }
    expect((await fetch(`${t.base}/healthz`)).status).toBe(200);
  });
});
