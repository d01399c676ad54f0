/**
 * The demo page in Chromium, its fake camera playing a face then an empty
 * scene, against a real server running the default model; and the same
 * page when the camera permission is refused.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { launchChromium, makeY4m, pageErrors, screenshot, SocketLog, tempDir } from './browser.js';

const FACE_SECONDS = 5;

describe('demo page, default model', () => {
  let t: TestApp;
  let browser: Browser;
  /** Same flags, but the permission prompt is denied. */
  let denying: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir();
    // One worker is plenty for one student, and starts faster on two cores.
    const [y4m, app] = await Promise.all([makeY4m(dir, { face: FACE_SECONDS, empty: 6 }), startTestApp({ WORKERS: '1' })]);
    t = app;
    [browser, denying] = await Promise.all([launchChromium({ y4m, allowCamera: true }), launchChromium({ y4m, allowCamera: false })]);
  });
  afterAll(async () => {
    await Promise.all([browser?.close(), denying?.close()]);
    await t?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows a score within 3 s, focused on the face, absent on the empty scene, and results that match the frames sent', async () => {
    const page: Page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(10_000);
    const errors = pageErrors(page);
    const sockets = new SocketLog(page);
    await page.goto(`http://localhost:${t.app.port}/`);
    await page.waitForSelector('body[data-ready="true"]');

    // The explanation comes before the camera: nothing is asked or sent until Start.
    expect(await page.locator('#consent').isVisible()).toBe(true);
    expect(await page.locator('#consent').innerText()).toContain('카메라 사용 권한');
    expect(sockets.sockets).toEqual([]);
    // Fits a laptop screen without scrolling.
    expect(await page.evaluate(() => document.documentElement.scrollHeight <= window.innerHeight)).toBe(true);

    await page.click('#start');
    const started = Date.now();
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById('score')!.textContent ?? ''), null, { timeout: 3000 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await page.locator('#status').innerText()).toContain('연결됨');

    // While the face is shown: state focused, and the face box drawn where the face is
    // (the astronaut's face sits at about x 0.40, y 0.21, w 0.12 of the frame).
    await page.waitForFunction(() => document.getElementById('overlay')!.dataset.box !== undefined, null, { timeout: 5000 });
    const shown = await page.evaluate(() => ({
      state: document.body.dataset.state,
      label: document.getElementById('state')!.textContent,
      box: JSON.parse(document.getElementById('overlay')!.dataset.box!),
      drawn: document.getElementById('overlay')!.dataset.drawn,
    }));
    await screenshot(page, 'demo-focused');
    expect(shown.state).toBe('focused');
    expect(shown.label).toContain('집중');
    expect(shown.box[0]).toBeGreaterThan(0.3);
    expect(shown.box[0] + shown.box[2]).toBeLessThan(0.65);
    expect(shown.box[2]).toBeGreaterThan(0.05);
    expect(shown.drawn).toMatch(/^\d+,\d+,\d+,\d+$/);

    await page.waitForFunction(() => (window as any).jipjung.results.some((r: any) => r.kind === 'batch' && r.state === 'absent'), null, { timeout: 15_000 });
    await page.waitForFunction(() => document.body.dataset.state === 'absent', null, { timeout: 3000 });
    await screenshot(page, 'demo-absent');
    expect(await page.getAttribute('body', 'data-state')).toBe('absent');
    expect(await page.getAttribute('#overlay', 'data-box')).toBeNull();

    await page.click('#stop');
    await page.waitForSelector('dialog#summary[open]', { timeout: 15_000 });
    await screenshot(page, 'demo-summary');

    const seen = await page.evaluate(() => {
      const j = (window as any).jipjung;
      return { results: j.results, summary: j.summary, sent: j.client.stats.sessionFramesSent, sessionId: j.client.sessionId, status: j.client.status };
    });
    const batches = seen.results.filter((r: any) => r.kind === 'batch');
    const windows = seen.results.filter((r: any) => r.kind === 'window');
    const sent = sockets.frames;

    // What the browser put on the wire parses with the server's own parser, seq 0, 1, 2, ... and captureTs never going back.
    expect(sockets.badFrames).toEqual([]);
    expect(sockets.sockets).toHaveLength(1);
    expect(sent.length).toBe(seen.sent);
    expect(sent.map((f) => f.header.seq)).toEqual([...Array(sent.length).keys()]);
    expect(sent.every((f) => f.header.version === 1 && f.header.format === 1)).toBe(true);
    for (let i = 1; i < sent.length; i++) expect(sent[i].header.captureTs).toBeGreaterThanOrEqual(sent[i - 1].header.captureTs);
    // No more than the server's 5 fps (plus timer jitter): 12 frames in any 2 s.
    for (let i = 12; i < sent.length; i++) expect(sent[i].at - sent[i - 12].at).toBeGreaterThan(2000);
    expect(sockets.hellos()).toEqual([expect.objectContaining({ type: 'hello', client: expect.objectContaining({ library: 'jipjung-client' }) })]);
    expect(sockets.texts.map((x) => x.msg.type)).toEqual(['hello', 'bye']);

    // One batch result per 5 frames sent (the last one partial), covering every seq once.
    expect(batches).toHaveLength(Math.ceil(sent.length / 5));
    batches.forEach((b: any, i: number) => {
      expect([b.seqFrom, b.seqTo]).toEqual([5 * i, Math.min(5 * i + 4, sent.length - 1)]);
      expect(b.frames.map((f: any) => f.seq)).toEqual(Array.from({ length: b.seqTo - b.seqFrom + 1 }, (_, k) => b.seqFrom + k));
      expect(b.sessionId).toBe(seen.sessionId);
    });
    expect(new Set(seen.results.map((r: any) => r.resultId)).size).toBe(seen.results.length);
    expect(windows.length).toBeGreaterThanOrEqual(1); // bye closes the open window
    expect(seen.summary).toMatchObject({ type: 'summary', sessionId: seen.sessionId, framesReceived: sent.length, framesRejected: 0, results: seen.results.length });
    expect(seen.summary.framesAnalyzed + seen.summary.framesDropped).toBe(sent.length);
    expect(await page.locator('#sent').innerText()).toBe(String(sent.length));
    expect(await page.locator('#resultCount').innerText()).toBe(String(seen.results.length));
    expect(await page.locator('#summaryBody').innerText()).toContain(String(sent.length));

    // Focused while the face was shown, then absent: never focused again after the first absent batch.
    const states: string[] = batches.map((b: any) => b.state);
    const firstAbsent = states.indexOf('absent');
    expect(states.slice(0, firstAbsent).filter((s) => s === 'focused').length).toBeGreaterThanOrEqual(3);
    expect(states.slice(0, firstAbsent).every((s) => s === 'focused' || s === 'unknown')).toBe(true);
    expect(states.slice(firstAbsent).every((s) => s === 'absent')).toBe(true);
    // The switch happens FACE_SECONDS into the video, about FACE_SECONDS * 5 frames in (give or take skipped captures).
    expect(batches[firstAbsent].seqTo).toBeGreaterThan(FACE_SECONDS * 5 * 0.6);
    const faceBatch = batches[0];
    expect(faceBatch.score).toBeGreaterThanOrEqual(50);
    expect(batches[batches.length - 1].score).toBe(0);
    expect(seen.summary.stateSeconds.focused).toBeGreaterThan(0);
    expect(seen.summary.stateSeconds.absent).toBeGreaterThan(0);

    expect(seen.status).toBe('closed');
    expect(sockets.closes).toHaveLength(1);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('camera denied: shows a clear message and opens no connection', async () => {
    const page = await denying.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(10_000);
    const errors = pageErrors(page);
    const sockets = new SocketLog(page);
    const sessionsOpened = () => t.logs.filter((l) => l.event === 'session_open').length;
    const sessionsBefore = sessionsOpened();
    await page.goto(`http://localhost:${t.app.port}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#start');

    const message = page.locator('#messages li[data-code="camera_denied"]');
    await message.waitFor({ timeout: 5000 });
    expect(await message.innerText()).toMatch(/카메라 권한이 거부되었습니다.*Camera access was denied/s);
    await page.waitForTimeout(1000); // long enough for a connection attempt, had one been made
    await screenshot(page, 'camera-denied');

    expect(sockets.sockets).toEqual([]);
    expect(sockets.frames).toEqual([]);
    const state = await page.evaluate(() => {
      const j = (window as any).jipjung;
      return { status: j.client.status, stream: j.client.stream, errors: j.errors.map((e: any) => e.code), log: j.statusLog.map((s: any) => s.status) };
    });
    expect(state).toEqual({ status: 'closed', stream: null, errors: ['camera_denied'], log: ['closed'] });
    expect(sessionsOpened()).toBe(sessionsBefore);
    // The explanation and the Start button stay for another try.
    expect(await page.locator('#consent').isVisible()).toBe(true);
    expect(await page.locator('#start').isEnabled()).toBe(true);
    expect(await page.locator('#stop').isDisabled()).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });
});
