/**
 * The student (or the browser) refuses the camera: the page says so in
 * words, opens no WebSocket and sends nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startTestApp, TEST_MODELS, type TestApp } from '../helpers/app.js';
import { launchChromium, pageErrors, screenshot, SocketLog } from './browser.js';

describe('demo page, camera denied', () => {
  let t: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    // The page only needs serving here; the numpy-only model starts fastest.
    [t, browser] = await Promise.all([
      startTestApp({ MODEL: 'brightness_model:BrightnessModel', MODEL_PATH: TEST_MODELS, WORKERS: '1' }),
      launchChromium({ allowCamera: false }),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('shows a clear message and opens no connection', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    const errors = pageErrors(page);
    const sockets = new SocketLog(page);
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
    expect(t.logs.filter((l) => l.event === 'session_open')).toEqual([]);
    // The explanation and the Start button stay for another try.
    expect(await page.locator('#consent').isVisible()).toBe(true);
    expect(await page.locator('#start').isEnabled()).toBe(true);
    expect(await page.locator('#stop').isDisabled()).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });
});
