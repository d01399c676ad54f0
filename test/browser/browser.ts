/**
 * Helpers for the browser tests: a fake-camera video, Debian's Chromium
 * driven by playwright-core, and what the page's WebSocket sent.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parseFrame, type FrameHeader } from '../../src/handler/frame-header.js';
import { findPython } from '../../src/ipc/python.js';
import { TEST_DIR } from '../helpers/frames.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(TEST_DIR, '..', 'test-artifacts');

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-browser-'));
}

/**
 * A .y4m of `face` seconds of the face frame, then `empty` seconds of the empty scene (5 fps).
 * `images.empty` puts another picture (a path) in the second part, e.g. a turned head.
 */
export async function makeY4m(dir: string, seconds: { face: number; empty: number }, images: { empty?: string } = {}): Promise<string> {
  const second = images.empty ? path.basename(images.empty, path.extname(images.empty)) : 'empty';
  const out = path.join(dir, `face${seconds.face}-${second}${seconds.empty}.y4m`);
  const script = path.join(TEST_DIR, 'fixtures', 'make_y4m.py');
  const args = [script, out, '--face', String(seconds.face), '--empty', String(seconds.empty)];
  if (images.empty) args.push('--empty-image', images.empty);
  await new Promise<void>((resolve, reject) => {
    execFile(findPython(process.env.PYTHON), args, { timeout: 30_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`make_y4m.py failed: ${err.message}\n${stderr}`)) : resolve(),
    );
  });
  return out;
}

/**
 * Chromium with a fresh profile (playwright makes a temporary user-data-dir
 * per launch). With `y4m`, the fake camera plays that file and the
 * permission prompt is accepted; without `allowCamera`, it is denied.
 */
export async function launchChromium(opts: { y4m?: string; allowCamera: boolean }): Promise<Browser> {
  const args = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--use-fake-device-for-media-stream',
  ];
  if (opts.allowCamera) args.push('--use-fake-ui-for-media-stream');
  else args.push('--deny-permission-prompts');
  if (opts.y4m) args.push(`--use-file-for-fake-video-capture=${opts.y4m}`);
  return chromium.launch({ executablePath: CHROMIUM, args, timeout: 30_000 });
}

export interface SentFrame {
  socket: number;
  at: number;
  header: FrameHeader;
  bytes: number;
}

/** Everything the page's WebSockets did, as seen by the browser. */
export class SocketLog {
  sockets: string[] = [];
  /** Text messages sent, parsed, with the socket they went on. */
  texts: Array<{ socket: number; at: number; msg: Record<string, any> }> = [];
  frames: SentFrame[] = [];
  /** Binary messages the server's own parser refused. */
  badFrames: string[] = [];
  closes: Array<{ socket: number; at: number }> = [];

  constructor(page: Page) {
    page.on('websocket', (ws) => {
      const socket = this.sockets.push(ws.url()) - 1;
      ws.on('framesent', ({ payload }) => {
        const at = Date.now();
        if (typeof payload === 'string') {
          this.texts.push({ socket, at, msg: JSON.parse(payload) });
          return;
        }
        const parsed = parseFrame(payload, 16 * 1024 * 1024);
        if (parsed.ok) this.frames.push({ socket, at, header: parsed.header, bytes: payload.length });
        else this.badFrames.push(`${parsed.code}: ${parsed.detail}`);
      });
      ws.on('close', () => this.closes.push({ socket, at: Date.now() }));
    });
  }

  framesOn(socket: number): SentFrame[] {
    return this.frames.filter((f) => f.socket === socket);
  }

  hellos(): Array<Record<string, any>> {
    return this.texts.filter((t) => t.msg.type === 'hello').map((t) => t.msg);
  }
}

/** Collects uncaught page errors and console errors, so a test can assert there were none. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}
