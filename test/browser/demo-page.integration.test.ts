/**
 * The demo page in Chromium, its fake camera playing a face then an empty
 * scene, against a real server running the default model; the same page
 * explaining the score while the face turns away; and the page when the
 * camera permission is refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestApp, TEST_DIR, type TestApp } from '../helpers/app.js';
import { launchChromium, makeY4m, pageErrors, screenshot, SocketLog, tempDir } from './browser.js';

const FACE_SECONDS = 5;
/** Seconds of the frontal face (long enough for the 5-s calibration), then of camera.jpg, a three-quarter profile (yaw ~60°). */
const TURN = { face: 6, turned: 8 };
const HEAD_POSE_REASONS = ['head-turned', 'head-down', 'head-up', 'head-tilted'];
/** The reason codes of the result contract; the page shows at most 3, most important first. */
const REASON_CODES = ['no-face', ...HEAD_POSE_REASONS, 'off-centre', 'eyes-closed', 'eyes-heavy', 'poor-image'];

describe('demo page, default model', () => {
  let t: TestApp;
  let browser: Browser;
  /** Same flags, but the permission prompt is denied. */
  let denying: Browser;
  /** Its fake camera plays the face, then the turned head. */
  let turning: Browser | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir();
    // One worker is plenty for one student, and starts faster on two cores.
    const [y4m, app] = await Promise.all([makeY4m(dir, { face: FACE_SECONDS, empty: 6 }), startTestApp({ WORKERS: '1' })]);
    t = app;
    [browser, denying] = await Promise.all([launchChromium({ y4m, allowCamera: true }), launchChromium({ y4m, allowCamera: false })]);
  });
  afterAll(async () => {
    await Promise.all([browser?.close(), denying?.close(), turning?.close()]);
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

  it('says why: the score factors, calibration progress, then "head turned" in words while the head is turned', async () => {
    const y4m = await makeY4m(dir, { face: TURN.face, empty: TURN.turned }, { empty: path.join(TEST_DIR, 'fixtures', 'camera.jpg') });
    turning = await launchChromium({ y4m, allowCamera: true });
    const page: Page = await turning.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(10_000);
    const errors = pageErrors(page);
    await page.goto(`http://localhost:${t.app.port}/`);
    await page.waitForSelector('body[data-ready="true"]');
    // What the page showed after each batch (the page's own handler runs first: it subscribed first).
    await page.evaluate(() => {
      const j = (window as any).jipjung;
      j.shown = [];
      j.client.on('result', (r: any) => {
        if (r.kind !== 'batch') return;
        const el = (id: string) => document.getElementById(id)!;
        const row = (key: string) => document.querySelector<HTMLElement>(`#components [data-component="${key}"]`)!;
        j.shown.push({
          resultId: r.resultId,
          state: r.state,
          yaw: r.signals?.yaw ?? null,
          signalReasons: r.signals?.reasons,
          reasons: el('reasons').dataset.reasons,
          reasonCodes: [...el('reasons').querySelectorAll<HTMLElement>('li[data-code]')].map((li) => li.dataset.code),
          reasonText: el('reasons').innerText,
          components: Object.fromEntries(['presence', 'attention', 'alertness'].map((k) => [k, { value: row(k).dataset.value, text: row(k).innerText }])),
          calibrating: document.body.dataset.calibrating,
          progress: el('calibration').dataset.progress,
          calibrationVisible: !el('calibration').hidden && el('calibration').getBoundingClientRect().height > 0,
          calibrationText: el('calibration').innerText,
        });
      });
    });
    await page.click('#start');

    // Calibration shows its progress in words while the model learns the student's posture ...
    await page.waitForFunction(() => document.body.dataset.calibrating === 'true', null, { timeout: 8000 });
    expect(await page.locator('#calibration').isVisible()).toBe(true);
    const calibrating = await page.locator('#calibration').innerText();
    expect(calibrating).toMatch(/자세를 익히는 중… \d+% · Learning your usual posture… \d+%/);
    // ... next to the score's three factors, labelled in plain words.
    const components = await page.locator('#components').innerText();
    for (const label of ['자리', 'Presence', '시선·자세', 'Head & gaze', '눈', 'Eyes']) expect(components).toContain(label);
    await screenshot(page, 'demo-why-calibrating');
    // ... and is gone once it is done.
    await page.waitForFunction(() => document.body.dataset.calibrating === 'false', null, { timeout: 15_000 });
    expect(await page.locator('#calibration').isVisible()).toBe(false);

    // The head turns: once the state reads distracted, the page says why.
    const turnedShown = () => document.body.dataset.state === 'distracted' && /(^| )head-turned( |$)/.test(document.getElementById('reasons')!.dataset.reasons ?? '');
    await page.waitForFunction(turnedShown, null, { timeout: 20_000 });
    await screenshot(page, 'demo-why-turned');
    expect(await page.locator('#reasons li[data-code="head-turned"]').innerText()).toBe('고개가 옆으로 돌아가 있어요 · Head turned away');
    expect(await page.evaluate(() => document.documentElement.scrollHeight <= window.innerHeight)).toBe(true);

    const shown: any[] = await page.evaluate(() => (window as any).jipjung.shown);
    expect(shown.length).toBeGreaterThanOrEqual(8);
    for (const s of shown) {
      // Every factor shown as a bar with its percentage, matching the value the page holds.
      for (const key of ['presence', 'attention', 'alertness']) {
        const { value, text } = s.components[key];
        if (value === '') expect(text).toMatch(/–$/);
        else expect(text).toMatch(new RegExp(`${Math.round(Number(value) * 100)}%$`));
      }
      // The model's known codes, in its order, as sentences, never raw; nothing when it sends none.
      if (s.signalReasons === undefined) {
        expect(s.reasons).toBeUndefined();
        expect(s.reasonCodes).toEqual([]);
      } else {
        expect(s.reasonCodes).toEqual(s.signalReasons.filter((c: string) => REASON_CODES.includes(c)).slice(0, 3));
        expect(s.reasons).toBe(s.reasonCodes.join(' '));
      }
      expect(s.reasonText).not.toMatch(/\b[a-z]+-[a-z]+\b/);
    }

    // Calibration: running with a growing percentage, then done and hidden for good.
    const running = shown.filter((s) => s.calibrating === 'true');
    const doneAt = shown.findIndex((s) => s.calibrating === 'false');
    expect(running.length).toBeGreaterThanOrEqual(2);
    expect(doneAt).toBeGreaterThan(0);
    expect(shown.slice(doneAt).every((s) => s.calibrating === 'false' && !s.calibrationVisible)).toBe(true);
    const progress = running.map((s) => Number(s.progress));
    expect(running.every((s) => s.progress !== '' && s.calibrationVisible)).toBe(true);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
    expect(progress[0]).toBeGreaterThan(0);
    expect(progress[progress.length - 1]).toBeLessThan(1);
    for (const s of running) expect(s.calibrationText).toContain(`${Math.round(Number(s.progress) * 100)}%`);

    // The frontal face: nothing about the head, and the head-and-gaze bar full.
    const frontal = shown.filter((s) => s.yaw !== null && Math.abs(s.yaw) < 10 && s.state === 'focused');
    expect(frontal.length).toBeGreaterThanOrEqual(3);
    for (const s of frontal) {
      expect(s.reasons).toBeDefined();
      expect(s.reasonCodes.filter((c: string) => HEAD_POSE_REASONS.includes(c))).toEqual([]);
      expect(Number(s.components.attention.value)).toBeGreaterThan(0.9);
      expect(Number(s.components.presence.value)).toBe(1);
    }

    // The turned head, once the state reads distracted: "head turned" in words, and the head-and-gaze bar low.
    const turned = shown.filter((s) => s.yaw !== null && Math.abs(s.yaw) > 30 && s.state === 'distracted');
    expect(turned.length).toBeGreaterThanOrEqual(1);
    for (const s of turned) {
      expect(s.reasonCodes).toContain('head-turned');
      expect(s.reasonText).toContain('고개가 옆으로 돌아가 있어요 · Head turned away');
      expect(Number(s.components.attention.value)).toBeLessThan(0.5);
      expect(Number(s.components.presence.value)).toBe(1);
    }

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
