/**
 * The server goes away mid-session and comes back on the same port: the
 * page shows it, reconnects by itself and goes on as a new session (the
 * restarted server has forgotten the old one).
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startTestApp, type TestApp, BRIGHTNESS_MODEL } from '../helpers/app.js';
import { launchChromium, makeY4m, pageErrors, screenshot, SocketLog, tempDir } from './browser.js';

type Page = import('playwright-core').Page;
/** The numpy-only test model on one worker: this test is about the connection, and restarts fast. */
const SERVER = { ...BRIGHTNESS_MODEL, WORKERS: '1' };
const batchesOf = (page: Page, sessionId: string) =>
  page.evaluate((id) => (window as any).jipjung.results.filter((r: any) => r.kind === 'batch' && r.sessionId === id), sessionId);

describe('demo page reconnect', () => {
  const apps: TestApp[] = [];
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir();
    const [y4m, app] = await Promise.all([makeY4m(dir, { face: 4, empty: 0 }), startTestApp(SERVER)]);
    apps.push(app);
    browser = await launchChromium({ y4m, allowCamera: true });
  });
  afterAll(async () => {
    await browser?.close();
    for (const app of apps) await app.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows the disconnection, reconnects with backoff, and keeps receiving results in a new session', async () => {
    const port = apps[0].app.port;
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(10_000);
    const errors = pageErrors(page);
    const sockets = new SocketLog(page);
    // A short backoff cap keeps the test quick; the default schedule is tested in client-wire.test.ts.
    await page.goto(`http://localhost:${port}/?retryCapMs=1000`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#start');
    await page.waitForFunction(() => (window as any).jipjung.results.some((r: any) => r.kind === 'batch'), null, { timeout: 10_000 });
    const first: string = await page.evaluate(() => (window as any).jipjung.client.sessionId);

    await apps.shift()!.close(); // closes every connection with 1001, then stops
    const downAt = Date.now();
    await page.waitForSelector('body[data-status="reconnecting"]', { timeout: 5000 });
    expect(await page.locator('#status').innerText()).toContain('재연결 중');
    // The next attempts find nobody listening: the page says so, and sends nothing meanwhile.
    await page.waitForSelector('#messages li[data-code="unreachable"]', { timeout: 5000 });
    expect(await page.locator('#messages li[data-code="unreachable"]').innerText()).toContain('서버에 연결할 수 없습니다');
    await screenshot(page, 'reconnect-down');

    apps.push(await startTestApp({ ...SERVER, PORT: String(port) }));
    const upAt = Date.now();
    await page.waitForFunction(() => (window as any).jipjung.sessions.length === 2, null, { timeout: 15_000 });
    const session = await page.evaluate(() => (window as any).jipjung.sessions[1]);
    expect(session).toMatchObject({ kind: 'new', previousSessionId: first });
    expect(session.sessionId).not.toBe(first);
    await page.waitForFunction((id) => (window as any).jipjung.results.filter((r: any) => r.kind === 'batch' && r.sessionId === id).length >= 2, session.sessionId, { timeout: 10_000 });
    expect(await page.getAttribute('body', 'data-status')).toBe('open');
    expect(await page.getAttribute('body', 'data-session-kind')).toBe('new');
    expect(await page.locator('#messages li[data-code="new_session"]').innerText()).toContain('새 세션');
    await screenshot(page, 'reconnect-new-session');

    // The statuses the page went through.
    const statuses: string[] = await page.evaluate(() => (window as any).jipjung.statusLog.map((s: any) => s.status));
    expect(statuses.slice(0, 2)).toEqual(['connecting', 'open']);
    expect(statuses).toContain('reconnecting');
    expect(statuses[statuses.length - 1]).toBe('open');
    const closeCodes = await page.evaluate(() => (window as any).jipjung.statusLog.filter((s: any) => s.status === 'reconnecting').map((s: any) => s.code));
    expect(closeCodes[0]).toBe(1001);

    // On the wire: the hello of every reconnect asks for the old session; the new session's frames start again at seq 0.
    const hellos = sockets.hellos();
    expect(hellos.length).toBeGreaterThanOrEqual(2);
    expect(hellos[0].sessionId).toBeUndefined();
    expect(hellos[hellos.length - 1].sessionId).toBe(first);
    const last = sockets.sockets.length - 1;
    const before = sockets.framesOn(0);
    const after = sockets.framesOn(last);
    expect(before.length).toBeGreaterThanOrEqual(5);
    expect(before.map((f) => f.header.seq)).toEqual([...before.keys()]);
    expect(after.map((f) => f.header.seq).slice(0, 10)).toEqual([...Array(10).keys()]);
    // Nothing was held back while disconnected: the first frame after the reconnect was captured after the server came back.
    expect(after[0].header.captureTs).toBeGreaterThan(upAt);
    expect(sockets.frames.filter((f) => f.at > downAt && f.at < upAt)).toEqual([]);
    // Every socket between the two carried only a hello (nobody answered it).
    for (let s = 1; s < last; s++) expect(sockets.framesOn(s)).toEqual([]);

    const batches = await batchesOf(page, session.sessionId);
    expect(batches[0].seqFrom).toBe(0);
    expect(batches.every((b: any) => b.state === 'focused')).toBe(true);

    await page.click('#stop');
    await page.waitForSelector('dialog#summary[open]', { timeout: 15_000 });
    const summary = await page.evaluate(() => (window as any).jipjung.summary);
    expect(summary).toMatchObject({ sessionId: session.sessionId, framesReceived: sockets.framesOn(last).length });
    expect(errors.filter((e) => !/WebSocket connection to .* failed/.test(e))).toEqual([]);
    await page.close();
  });

  it('a dropped connection resumes the same session: results and seqs go on where they were', async () => {
    const app = apps[apps.length - 1];
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(10_000);
    const sockets = new SocketLog(page);
    await page.goto(`http://localhost:${app.app.port}/?retryCapMs=1000`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#start');
    await page.waitForFunction(() => (window as any).jipjung.results.filter((r: any) => r.kind === 'batch').length >= 2, null, { timeout: 10_000 });
    const first: string = await page.evaluate(() => (window as any).jipjung.client.sessionId);

    // The network drops the connection (no close frame): the server keeps the session for RESUME_TTL_MS.
    for (const ws of app.app.stream.wss.clients) ws.terminate();
    await page.waitForFunction(() => (window as any).jipjung.sessions.length === 2, null, { timeout: 15_000 });
    const session = await page.evaluate(() => (window as any).jipjung.sessions[1]);
    expect(session).toMatchObject({ kind: 'resumed', sessionId: first });
    await page.waitForFunction(
      (n) => (window as any).jipjung.results.filter((r: any) => r.kind === 'batch').length >= n,
      (await batchesOf(page, first)).length + 2,
      { timeout: 10_000 },
    );
    // resultIds have no repeats and no holes across the drop.
    const ids: number[] = await page.evaluate(() => (window as any).jipjung.results.map((r: any) => r.resultId));
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
    // The hello asked for the session with its resume token; seqs went on instead of restarting.
    const hello = sockets.hellos().at(-1);
    expect(hello).toMatchObject({ sessionId: first, resumeToken: expect.any(String) });
    const after = sockets.framesOn(sockets.sockets.length - 1);
    const before = sockets.framesOn(0);
    expect(after[0].header.seq).toBeGreaterThan(before.at(-1)!.header.seq);
    await screenshot(page, 'reconnect-resumed');
    await page.close();
  });
});
