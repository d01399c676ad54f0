/**
 * GET /dashboard: the instance's own operations page, in headless Chromium
 * while a client streams, shows non-zero live data in every chart; and the
 * JSON behind it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { encodeFrame, FORMAT_JPEG } from '../src/handler/frame-header.js';
import { launchChromium, pageErrors, screenshot } from './browser/browser.js';
import { frame, startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const face = frame('face.jpg');
let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  [t, browser] = await Promise.all([
    startTestApp({ ...BRIGHTNESS_MODEL }),
    launchChromium({ allowCamera: false }),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

describe('GET /dashboard', () => {
  it('serves the page, uPlot from node_modules, and the samples as JSON', async () => {
    const page = await fetch(`${t.ops}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('/dashboard/uplot.js');
    const lib = await fetch(`${t.ops}/dashboard/uplot.js`);
    expect(lib.headers.get('content-type')).toMatch(/^text\/javascript/);
    // The page is ours and changes with a deploy; the library is pinned by the lock file.
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(lib.headers.get('cache-control')).toBe('public, max-age=3600');
    expect((await lib.text()).length).toBeGreaterThan(20_000);
    expect((await fetch(`${t.ops}/dashboard/uplot.css`)).status).toBe(200);

    // Two samples, so that asking for those after the first has something to answer.
    const data = await waitFor(
      async () => {
        const d = await (await fetch(`${t.ops}/dashboard/data`)).json();
        return d.samples.length >= 2 && d;
      },
      { what: 'two dashboard samples' },
    );
    expect(data).toMatchObject({ intervalMs: 1000, instance: { pid: process.pid, workers: 2 } });
    const first = data.samples[0];
    const since = await (await fetch(`${t.ops}/dashboard/data?since=${first.t}`)).json();
    expect(since.samples.length).toBeGreaterThanOrEqual(1);
    expect(since.samples.every((s: { t: number }) => s.t > first.t)).toBe(true);
    const last = data.samples[data.samples.length - 1];
    expect(last).toMatchObject({ sessions: 0, workersReady: 2, ready: true, rssBytes: { workers: [expect.any(Number), expect.any(Number)] } });
    const later = await (await fetch(`${t.ops}/dashboard/data?since=${last.t}`)).json();
    expect(later.samples.every((s: { t: number }) => s.t > last.t)).toBe(true);
  });

  it('shows live, non-zero charts in Chromium while a client streams', async () => {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1320 } });
    page.setDefaultTimeout(15_000);
    const errors = pageErrors(page);
    await page.goto(`${t.ops}/dashboard`);
    await page.waitForSelector('body[data-ready="true"]');

    const c = await TestClient.connect(t.url);
    const streaming = (async () => {
      const sent = new Map<number, number>();
      for (let seq = 0; seq < 50; seq++) {
        const captureTs = Date.now();
        sent.set(seq, captureTs);
        c.sendRaw(encodeFrame({ format: FORMAT_JPEG, seq, captureTs }, face));
        // Now and then a repeated frame (dropped as duplicate) and a broken one (rejected).
        if (seq % 10 === 9) c.sendRaw(encodeFrame({ format: FORMAT_JPEG, seq: seq - 1, captureTs: sent.get(seq - 1)! }, face));
        if (seq % 10 === 5) c.sendRaw(Buffer.from([1, 1]));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    type Series = Array<number | null>;
    // Charts hold [times, ...series]; wait until each has seen the stream.
    await page.waitForFunction(() => {
      const charts = (window as any).dashboard.charts;
      const some = (name: string, i: number, pred: (v: number) => boolean) => (charts[name].data[i] as Series).some((v) => v !== null && pred(v));
      return (
        some('frames', 1, (v) => v > 0) && // received
        some('frames', 2, (v) => v > 0) && // analysed
        some('sessions', 2, (v) => v >= 1) &&
        some('drops', 1, (v) => v > 0) && // duplicate
        some('latency', 2, (v) => v > 0) && // end to end p95
        some('latency', 6, (v) => v > 0) // model p95
      );
    });
    await streaming;
    // The charts drawn with a sample taken after the stream ended.
    const endedAt = Date.now();
    await page.waitForFunction((t) => (window as any).dashboard.samples.at(-1)?.t > t, endedAt);
    await screenshot(page, 'dashboard');

    const seen = await page.evaluate(() => {
      const d = (window as any).dashboard;
      const data = (name: string) => d.charts[name].data as Series[];
      const tile = (id: string) => document.getElementById(id)!.textContent;
      return {
        labels: Object.fromEntries(Object.entries(d.charts).map(([name, u]: [string, any]) => [name, u.series.slice(1).map((s: any) => s.label)])),
        cpu: data('cpu'),
        memory: data('memory'),
        loop: data('loop'),
        rejected: data('frames')[3],
        points: data('frames')[0].length,
        canvases: document.querySelectorAll('.plot canvas').length,
        tiles: ['t-sessions', 't-framesIn', 't-analysed', 't-latency', 't-workers', 't-lag'].map(tile),
        readiness: tile('readiness'),
        updates: d.updates,
        errors: d.errors,
      };
    });
    expect(seen.labels.cpu).toEqual(['server', 'worker 0', 'worker 1']);
    expect(seen.labels.latency).toEqual(['end to end p50', 'end to end p95', 'end to end p99', 'queue wait p95', 'IPC p95', 'model p95']);
    expect(seen.canvases).toBe(8);
    expect(seen.points).toBeGreaterThanOrEqual(5);
    const defined = (s: Series) => s.filter((v): v is number => v !== null);
    // Every process has CPU and memory figures; the workers hold a model, so tens of MiB.
    for (const i of [1, 2, 3]) {
      expect(defined(seen.cpu[i]).length, `cpu ${i}`).toBeGreaterThan(0);
      expect(Math.max(...defined(seen.memory[i])), `memory ${i}`).toBeGreaterThan(10);
    }
    expect(Math.max(...defined(seen.cpu[1]))).toBeGreaterThan(0); // the server handled the stream
    expect(defined(seen.loop[1]).length).toBe(seen.points);
    expect(Math.max(...defined(seen.rejected))).toBeGreaterThan(0);
    expect(seen.tiles.every((x) => x && x !== '–')).toBe(true);
    expect(seen.readiness).toBe('ready');
    expect(seen.updates).toBeGreaterThanOrEqual(5);
    expect(seen.errors).toEqual([]);
    expect(errors).toEqual([]);

    await c.bye();
    c.close();
    await page.close();
  });
});

describe('GET /dashboard with METRICS_TOKEN', () => {
  it('asks for the token, then sends it as a header to read its data; the page breaks no rule of its Content-Security-Policy', async () => {
    const token = 'ops-token-0123456789';
    const guarded = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1', METRICS_TOKEN: token });
    const page = await browser.newPage();
    try {
      page.setDefaultTimeout(15_000);
      const errors = pageErrors(page);
      const dataRequests: Array<{ url: string; authorization?: string }> = [];
      page.on('request', (r) => {
        if (r.url().includes('/dashboard/data')) dataRequests.push({ url: r.url(), authorization: r.headers().authorization });
      });
      await page.goto(`${guarded.base}/dashboard`);
      await page.waitForSelector('#token-form:not([hidden])');
      expect(await page.textContent('#readiness')).toBe('token required');
      await page.fill('#token', token);
      await page.click('#token-form button');
      await page.waitForSelector('body[data-ready="true"]');
      const after = dataRequests.filter((r) => r.authorization);
      expect(after.length).toBeGreaterThan(0);
      expect(after.every((r) => r.authorization === `Bearer ${token}` && !r.url.includes(token))).toBe(true);
      // The one 401 before the token was given is expected; nothing else, and nothing the policy refused.
      expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    } finally {
      await page.close();
      await guarded.close();
    }
  });
});
