/**
 * The instance's NDJSON logs, parsed as pino writes them: a scripted
 * session behind a trusted proxy, with good, broken and repeated frames,
 * leaves the events and fields operators rely on, and never an image byte
 * or a token.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FORMAT_JPEG } from '../src/handler/frame-header.js';
import { createLogger, wantsPretty } from '../src/utils/logger.js';
import { frame, startTestApp, TEST_MODELS, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const face = frame('face.jpg');
const TOKEN = 'tok-SECRET-d41d8cd98f00';
const CLIENT_TOKEN = 'tok-SECRET-in-client-info';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ...BRIGHTNESS_MODEL, TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8' });
});
afterAll(async () => {
  await t?.close();
});

describe('logs of a scripted session', () => {
  it('has session_open, frame_rejected (at most 20), unit_done, session_close with their fields; no image bytes, no tokens', async () => {
    const c = await TestClient.connect(t.url, { type: 'hello', token: TOKEN, client: { library: 'log-test', token: CLIENT_TOKEN } }, {
      'user-agent': 'jipjung-log-test/1.0',
      // The client wrote 192.0.2.1 itself; our edge proxy saw 203.0.113.7; an internal proxy (10.1.2.3) forwarded to us.
      'x-forwarded-for': '192.0.2.1, 203.0.113.7, 10.1.2.3',
    });
    const sessionId = c.welcome!.sessionId as string;
    // One captureTs for all: a seq going back with a newer captureTs would be a client restarting its count.
    const captureTs = Date.now();
    for (let seq = 0; seq < 10; seq++) c.sendFrame(face, seq, captureTs);
    for (let i = 0; i < 5; i++) c.sendRaw(Buffer.from([1, 1, 0])); // frame_invalid: no header, no seq
    for (let seq = 10; seq < 30; seq++) c.sendRaw(encodeFrame({ format: FORMAT_JPEG, seq, captureTs }, Buffer.from('not a jpeg at all')));
    c.sendFrame(face, 3, captureTs); // a duplicate
    await c.until(() => c.results('batch').length === 6);
    const summary = await c.bye();
    await c.waitForClose();
    await c.until(() => t.logs.some((l) => l.event === 'session_close' && l.sessionId === sessionId));
    const mine = t.logs.filter((l) => l.sessionId === sessionId);

    const open = mine.filter((l) => l.event === 'session_open');
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ level: 'info', sessionId: expect.stringMatching(UUID), remoteAddress: '203.0.113.7', userAgent: 'jipjung-log-test/1.0', protocol: 1 });

    const rejected = mine.filter((l) => l.event === 'frame_rejected');
    expect(rejected).toHaveLength(20); // of 25: the rest are only counted
    expect(rejected.slice(0, 5).map((l) => l.code)).toEqual(Array(5).fill('frame_invalid'));
    expect(rejected.slice(5).every((l) => l.code === 'jpeg_invalid')).toBe(true);
    expect(rejected.slice(5).map((l) => l.seq)).toEqual(Array.from({ length: 15 }, (_, i) => 10 + i));
    expect(rejected.map((l) => l.sampled)).toEqual([...Array(19).fill(false), true]);
    expect(rejected.every((l) => l.level === 'info' && typeof l.detail === 'string')).toBe(true);

    const units = mine.filter((l) => l.event === 'unit_done');
    expect(units.length).toBeGreaterThanOrEqual(2);
    for (const u of units) {
      expect(u).toMatchObject({ level: 'debug', seqFrom: expect.any(Number), seqTo: expect.any(Number), frames: expect.any(Number) });
      for (const k of ['queueMs', 'ipcMs', 'modelMs']) expect(u[k], k).toBeGreaterThanOrEqual(0);
      expect(u.modelMs).toBeLessThanOrEqual(u.ipcMs);
    }
    expect(units.slice(0, 2).map((u) => [u.seqFrom, u.seqTo, u.frames])).toEqual([
      [0, 4, 5],
      [5, 9, 5],
    ]);

    const close = mine.filter((l) => l.event === 'session_close');
    expect(close).toHaveLength(1);
    expect(close[0]).toMatchObject({
      level: 'info',
      closeCode: 1000,
      closeReason: 'bye',
      durationMs: expect.any(Number),
      frames: { received: 36, analysed: 10, rejected: { frame_invalid: 5, jpeg_invalid: 20 }, dropped: { duplicate: 1 }, lost: 0 },
      meanScore: summary.meanScore,
    });
    expect(summary.meanScore).toEqual(expect.any(Number));

    // Nothing secret and no picture, in any line of the instance.
    const text = t.logs.map((l) => JSON.stringify(l)).join('\n');
    expect(text).not.toContain('tok-SECRET');
    expect(text).not.toContain(c.welcome!.resumeToken);
    expect(text).not.toContain(face.subarray(0, 64).toString('base64'));
    expect(text).not.toContain('\u00ff\u00d8\u00ff');
    expect(Math.max(...t.logs.map((l) => JSON.stringify(l).length))).toBeLessThan(4096);
  });

  it('every line is one JSON object with a level, a time and a stable event name', () => {
    expect(t.logs.length).toBeGreaterThan(10);
    for (const l of t.logs) {
      expect(typeof l.level).toBe('string');
      expect(new Date(l.time).toISOString()).toBe(l.time);
      expect(l.event, JSON.stringify(l)).toMatch(/^[a-z]+(_[a-z]+)*$/);
    }
    const starts = t.logs.filter((l) => l.event === 'worker_start');
    expect(starts.map((l) => l.worker).sort()).toEqual([0, 1]);
    for (const s of starts) expect(s).toMatchObject({ level: 'info', workerPid: expect.any(Number), model: 'brightness', restarts: 0 });
  });
});

describe('error events', () => {
  it('a model that raises logs event "error" with the error under err', async () => {
    const bad = await startTestApp({ MODEL: 'worker_bad_output:BadOutputModel', MODEL_PATH: TEST_MODELS, MODEL_OPTIONS: JSON.stringify({ raiseSeqs: [2] }) });
    try {
      const c = await TestClient.connect(bad.url);
      await c.stream(face, 5);
      await c.until(() => c.results('batch').length === 1);
      const error = bad.logs.find((l) => l.event === 'error');
      expect(error).toMatchObject({ level: 'warn', sessionId: c.welcome!.sessionId, failure: 'model', err: { type: 'WorkerRequestError', message: expect.any(String), stack: expect.any(String) } });
      c.close();
    } finally {
      await bad.close();
    }
  });
});

describe('log format', () => {
  it('is pretty only when asked, or with auto when stdout is a terminal', () => {
    expect(wantsPretty('auto', true)).toBe(true);
    expect(wantsPretty('auto', false)).toBe(false);
    expect(wantsPretty('auto', undefined)).toBe(false);
    expect(wantsPretty('true', false)).toBe(true);
    expect(wantsPretty('false', true)).toBe(false);
  });

  it('pretty lines are text, and still redact tokens and images', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const logger = createLogger('info', sink, { pretty: true });
    logger.info({ event: 'session_open', token: TOKEN, frame: { image: 'AAAA' } }, 'session opened');
    // pino-pretty formats in a stream of its own: the line comes a little later.
    await waitFor(() => out.includes('session opened') && out.endsWith('\n'), { timeoutMs: 5000, what: 'the pretty line', observed: () => out });
    expect(out).toMatch(/INFO.*session opened/);
    expect(out).toContain('session_open');
    expect(() => JSON.parse(out)).toThrow();
    expect(out).not.toContain(TOKEN);
    expect(out).not.toContain('AAAA');
  });
});
