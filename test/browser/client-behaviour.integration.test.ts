/**
 * The client library in Chromium against a scripted server: what the real
 * server does not send yet, or not when a test wants it (resumed sessions,
 * repeated results, throttle, align, notices, 4401), and how the client
 * must react.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, makeY4m, pageErrors, screenshot, tempDir } from './browser.js';
import { batch, ScriptedServer, welcome } from './scripted-server.js';

/**
 * Intervals between frames by their captureTs: the client's own clock, so the network and this process's
 * event loop add nothing. Judged by the median, which one late tick of a busy browser does not move.
 */
const intervals = (frames: Array<{ header: { captureTs: number } }>) => frames.slice(1).map((f, i) => f.header.captureTs - frames[i].header.captureTs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const shownResults = (page: Page) => page.evaluate(() => (window as any).jipjung.results.map((r: any) => [r.resultId, r.score]));

describe('client library against a scripted server', () => {
  let server: ScriptedServer;
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir();
    const [y4m, s] = await Promise.all([makeY4m(dir, { face: 2, empty: 0 }), ScriptedServer.start()]);
    server = s;
    browser = await launchChromium({ y4m, allowCamera: true });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('resumes a session, drops repeated results, obeys throttle and align, shows notices, and gives up on 4401', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(10_000);
    const errors = pageErrors(page);
    await page.goto(`http://localhost:${server.port}/?retryBaseMs=100&retryCapMs=300`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#start');

    // First connection: the hello asks for nothing in particular; frames start at seq 0 after the welcome.
    const c1 = await server.connection(0);
    expect(c1.texts[0]).toMatchObject({ type: 'hello', client: { library: 'jipjung-client' } });
    expect(c1.texts[0].sessionId).toBeUndefined();
    c1.send(welcome('s-1', { resumeToken: 'token-1' }));
    await server.until(() => c1.frames.length >= 5, 5000, '5 frames');
    expect(c1.frames.slice(0, 5).map((f) => f.header.seq)).toEqual([0, 1, 2, 3, 4]);

    // A result, then the same resultId again: shown once.
    c1.send(batch(1, 0, 90));
    c1.send(batch(1, 0, 10));
    c1.send(batch(2, 5, 80));
    await page.waitForFunction(() => (window as any).jipjung.results.length >= 2);
    expect(await shownResults(page)).toEqual([[1, 90], [2, 80]]);
    expect(await page.locator('#score').innerText()).toBe('80');

    // Throttle to 2 fps: frames come at most every ~500 ms; throttle back to welcome.fps lifts it.
    c1.send({ type: 'throttle', fps: 2, reason: 'overloaded' });
    await page.waitForSelector('#messages li[data-code="throttled"]');
    expect(await page.locator('#rate').innerText()).toContain('2 fps');
    const throttledFrom = c1.frames.length;
    await server.until(() => c1.frames.length >= throttledFrom + 4, 5000, 'throttled frames');
    const slow = intervals(c1.frames.slice(throttledFrom, throttledFrom + 4));
    expect(median(slow), JSON.stringify(slow)).toBeGreaterThan(400);
    c1.send({ type: 'throttle', fps: 5, reason: 'recovered' });
    await page.waitForSelector('#messages li[data-code="unthrottled"]');
    const liftedFrom = c1.frames.length + 1; // the frame in flight may still keep the slow spacing
    await server.until(() => c1.frames.length >= liftedFrom + 5, 5000, 'frames after the throttle was lifted');
    const fast = intervals(c1.frames.slice(liftedFrom, liftedFrom + 5));
    expect(median(fast), JSON.stringify(fast)).toBeLessThan(300);

    // align: the next capture comes delayMs later, once; the cadence after it is unchanged.
    const alignFrom = c1.frames.length;
    c1.send({ type: 'align', delayMs: 600 });
    await server.until(() => c1.frames.length >= alignFrom + 6, 5000, 'frames after align');
    const around = intervals(c1.frames.slice(alignFrom - 1, alignFrom + 6));
    const longest = Math.max(...around);
    expect(longest).toBeGreaterThan(650);
    expect(longest).toBeLessThan(1100);
    const rest = around.filter((_, i) => i !== around.indexOf(longest));
    expect(median(rest), JSON.stringify(around)).toBeLessThan(300);
    expect(await page.evaluate(() => (window as any).jipjung.aligns)).toEqual([600]);

    // A notice is shown, in words.
    c1.send({ type: 'notice', code: 'rate_limited', message: 'frames above 5 fps are dropped' });
    await page.waitForSelector('#messages li[data-code="rate_limited"]');
    expect(await page.locator('#messages li[data-code="rate_limited"]').innerText()).toContain('전송 속도가 제한되었습니다');

    // Service restart: the client comes back asking for its session with the resume token; the server resumes it.
    const lastSeq = c1.frames[c1.frames.length - 1].header.seq;
    c1.ws.close(1012, 'service restart');
    const c2 = await server.connection(1);
    expect(c2.texts[0]).toMatchObject({ type: 'hello', sessionId: 's-1', resumeToken: 'token-1' });
    c2.send(welcome('s-1'));
    await server.until(() => c2.frames.length >= 3, 5000, 'frames after the resume');
    expect(c2.frames[0].header.seq).toBeGreaterThan(lastSeq); // the seq goes on: same session
    expect(c2.frames.map((f) => f.header.seq)).toEqual(c2.frames.map((_, i) => c2.frames[0].header.seq + i));
    const sessions = await page.evaluate(() => (window as any).jipjung.sessions.map((s: any) => [s.kind, s.sessionId, s.previousSessionId]));
    expect(sessions).toEqual([
      ['new', 's-1', null],
      ['resumed', 's-1', 's-1'],
    ]);
    expect(await page.locator('#messages li[data-code="resumed"]').count()).toBe(1);
    // Results already seen before the reconnect are still dropped; new ones are shown.
    c2.send(batch(2, 5, 11));
    c2.send(batch(3, 10, 70));
    await page.waitForFunction(() => (window as any).jipjung.results.length >= 3);
    expect(await shownResults(page)).toEqual([[1, 90], [2, 80], [3, 70]]);

    // 4401: not retried; the camera is released and the page says why.
    c2.ws.close(4401, 'unauthorized');
    await page.waitForSelector('body[data-status="closed"]');
    await page.waitForSelector('#messages li[data-code="unauthorized"]');
    await screenshot(page, 'client-unauthorized');
    // A retry is decided when the close arrives, with the status 'reconnecting' and a timer: after 4401 the
    // client went to 'closed' instead, counted no reconnect beyond the one of the 1012, and has stopped.
    const after = await page.evaluate(() => {
      const j = (window as any).jipjung;
      return { statuses: j.statusLog.map((s: any) => [s.status, s.code]), reconnects: j.client.stats.reconnects, started: j.client.started };
    });
    expect(after.statuses.at(-1)).toEqual(['closed', 4401]);
    expect(after.statuses.filter(([status]: [string]) => status === 'reconnecting')).toEqual([['reconnecting', 1012]]);
    expect(after).toMatchObject({ reconnects: 1, started: false });
    expect(server.connections).toHaveLength(2);
    expect(await page.evaluate(() => (window as any).jipjung.client.stream)).toBeNull();
    expect(await page.locator('#consent').isVisible()).toBe(true);
    expect(c1.badFrames.concat(c2.badFrames)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
