/**
 * The demo page in Firefox: Debian's /usr/bin/firefox-esr (installed by
 * .ci/run), or FIREFOX_PATH; skipped where neither exists. playwright-core drives only its own Firefox
 * build, so this talks WebDriver BiDi to the stock browser directly.
 * Firefox's fake camera shows a flat colour, so the model says `unknown`:
 * the test is about the client working there, not about the model.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/wait.js';
import { ARTIFACTS, tempDir } from './browser.js';

const FIREFOX = process.env.FIREFOX_PATH ?? (fs.existsSync('/usr/bin/firefox-esr') ? '/usr/bin/firefox-esr' : undefined);
const BIDI_PORT = 9000 + Math.floor(Math.random() * 900);

/** The smallest WebDriver BiDi client: commands in, results out. */
class Bidi {
  private id = 0;
  private readonly pending = new Map<number, (m: any) => void>();
  constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    });
  }
  async command(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const id = ++this.id;
    const m = await new Promise<any>((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
    if (m.type === 'error') throw new Error(`${method}: ${m.error} ${m.message}`);
    return m.result;
  }
  /** Evaluates `expression` (a promise is awaited) and returns its JSON.stringify'd value, parsed. */
  async json(context: string, expression: string): Promise<any> {
    const r = await this.command('script.evaluate', { expression: `(async () => JSON.stringify(await (${expression})))()`, target: { context }, awaitPromise: true });
    if (r.type === 'exception') throw new Error(r.exceptionDetails.text);
    return r.result.type === 'string' ? JSON.parse(r.result.value) : undefined;
  }
}

describe.skipIf(!FIREFOX)('demo page in Firefox', () => {
  let t: TestApp;
  let firefox: ChildProcess;
  let bidi: Bidi;
  let profile: string;

  beforeAll(async () => {
    profile = tempDir();
    // A fake camera, no permission prompt.
    fs.writeFileSync(
      path.join(profile, 'user.js'),
      ['media.navigator.streams.fake', 'media.navigator.permission.disabled'].map((p) => `user_pref("${p}", true);`).join('\n'),
    );
    t = await startTestApp();
    firefox = spawn(FIREFOX!, ['--headless', '--no-remote', '--profile', profile, `--remote-debugging-port=${BIDI_PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Firefox did not start BiDi: ${stderr}`)), 20_000);
      firefox.stderr!.on('data', (d) => {
        stderr += d;
        if (stderr.includes('WebDriver BiDi listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const ws = new WebSocket(`ws://127.0.0.1:${BIDI_PORT}/session`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    bidi = new Bidi(ws);
    await bidi.command('session.new', { capabilities: {} });
  });
  afterAll(async () => {
    firefox?.kill();
    await t?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  it('streams frames, shows results and ends with the summary', async () => {
    const { contexts } = await bidi.command('browsingContext.getTree');
    const context: string = contexts[0].context;
    await bidi.command('browsingContext.navigate', { context, url: `http://localhost:${t.app.port}/`, wait: 'complete' });
    await bidi.json(context, `document.getElementById('start').click()`);
    const poll = (expr: string, timeoutMs: number) => waitFor(() => bidi.json(context, expr), { timeoutMs, intervalMs: 100, what: expr });
    await poll(`jipjung.results.filter((r) => r.kind === 'batch').length >= 3`, 10_000);
    const live = await bidi.json(context, `({ status: jipjung.client.status, encoder: jipjung.client.encoderMode, errors: jipjung.errors, fits: document.documentElement.scrollHeight <= innerHeight })`);
    expect(live).toEqual({ status: 'open', encoder: 'worker', errors: [], fits: true });

    await bidi.json(context, `document.getElementById('stop').click()`);
    await poll(`document.getElementById('summary').open`, 10_000);
    const shot = await bidi.command('browsingContext.captureScreenshot', { context });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.writeFileSync(path.join(ARTIFACTS, 'firefox-summary.png'), Buffer.from(shot.data, 'base64'));
    const end = await bidi.json(context, `({ sent: jipjung.client.stats.sessionFramesSent, results: jipjung.results, summary: jipjung.summary, status: jipjung.client.status })`);
    const batches = end.results.filter((r: any) => r.kind === 'batch');
    expect(batches).toHaveLength(Math.ceil(end.sent / 5));
    batches.forEach((b: any, i: number) => expect([b.seqFrom, b.seqTo]).toEqual([5 * i, Math.min(5 * i + 4, end.sent - 1)]));
    expect(end.summary).toMatchObject({ framesReceived: end.sent, framesRejected: 0, results: end.results.length });
    expect(end.status).toBe('closed');
  });
});
