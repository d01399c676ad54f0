import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scene, startTestApp, TEST_MODELS, type TestApp } from './helpers/app.js';
import { TestClient, type Msg } from './helpers/client.js';

const SESSIONS = 16;
const SEND_FPS = 25;
const DURATION_MS = 6000;
const BUDGET_BYTES = 16 * 1024 * 1024;

/** An instance with one worker whose model sleeps `sleepMs` a unit: a capacity that does not depend on the machine. */
const slowWorkerApp = (sleepMs: number, env: Record<string, string>) =>
  startTestApp({ WORKERS: '1', MODEL: 'worker_slow:SlowModel', MODEL_PATH: TEST_MODELS, MODEL_OPTIONS: JSON.stringify({ sleepMs }), ...env });

describe('overload with real workers', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      WORKERS: '1',
      FPS: '30',
      RATE_BURST_FRAMES: '30',
      RATE_ABUSE_FRAMES: '100000',
      SESSION_QUEUE_UNITS: '2',
      FRAME_BUDGET_BYTES: String(BUDGET_BYTES),
      MAX_UNIT_AGE_MS: '1500',
      LATENCY_TARGET_MS: '500',
      // Every frame located by the network (about 5 ms): 16 sessions at 25 fps are then twice what one worker analyses.
      MODEL_OPTIONS: JSON.stringify({ stillReuse: 0 }),
    });
  });
  afterAll(() => t.close());

  it('sheds stale frames fairly: every session keeps getting analysed results, memory stays in budget, counts add up', async () => {
    const faces = scene('face');
    const clients = await Promise.all(Array.from({ length: SESSIONS }, () => TestClient.connect(t.url)));
    const arrivals = new Map<TestClient, Array<{ at: number; msg: Msg }>>();
    const started = Date.now();
    for (const c of clients) {
      const list: Array<{ at: number; msg: Msg }> = [];
      arrivals.set(c, list);
      c.ws.on('message', (data, isBinary) => {
        if (!isBinary) list.push({ at: Date.now() - started, msg: JSON.parse(data.toString()) });
      });
    }
    const sent = new Map<TestClient, number>(clients.map((c) => [c, 0]));
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (Date.now() - started >= DURATION_MS) {
          clearInterval(timer);
          resolve();
          return;
        }
        for (const c of clients) {
          const n = sent.get(c)!;
          c.sendFrame(faces[n % faces.length]);
          sent.set(c, n + 1);
        }
      }, 1000 / SEND_FPS);
    });
    const summaries = await Promise.all(clients.map((c) => c.bye()));

    expect(t.app.budget.peak).toBeLessThanOrEqual(BUDGET_BYTES);
    expect(t.app.budget.used).toBe(0);
    let shed = 0;
    let rateLimited = 0;
    for (const [i, c] of clients.entries()) {
      const s = summaries[i];
      // Every frame sent was received and ended in exactly one outcome.
      expect(s.framesReceived).toBe(sent.get(c));
      expect(s.framesAnalyzed + s.framesRejected + s.framesDropped).toBe(s.framesReceived);
      expect(s.framesAnalyzed).toBeGreaterThan(0);
      shed += s.dropped.shed ?? 0;
      rateLimited += s.dropped.rate_limited ?? 0;
      // No session starves: it never waits 2 s for an analysed result (the longest gaps measured are 0.7-0.9 s).
      const analysed = arrivals.get(c)!.filter((a) => a.msg.type === 'result' && a.msg.kind === 'batch' && a.msg.framesAnalyzed > 0);
      const times = [0, ...analysed.map((a) => a.at).filter((at) => at < DURATION_MS), DURATION_MS];
      const gap = Math.max(...times.slice(1).map((at, k) => at - times[k]));
      expect(gap, `session ${i} waited ${gap} ms for an analysed result`).toBeLessThan(2000);
      // The server asked it to slow down.
      expect(arrivals.get(c)!.some((a) => a.msg.type === 'throttle' && a.msg.fps < 30)).toBe(true);
    }
    expect(shed).toBeGreaterThan(0);
    const totalSent = [...sent.values()].reduce((a, b) => a + b, 0);
    const totalAnalysed = summaries.reduce((a, s) => a + s.framesAnalyzed, 0);
    // The offered load was well above what the worker analysed.
    expect(totalAnalysed).toBeLessThan(totalSent * 0.6);
    expect(t.logs.filter((l) => l.level === 'fatal')).toEqual([]);
    expect(rateLimited).toBeGreaterThan(0); // the clients ignored the throttle and were held to it
  }, 60_000);
});

describe('when even the lowest fps cannot keep latency bounded', () => {
  it('new sessions are refused with overloaded and close 1013, and accepted again once it passes', async () => {
    // One worker that needs 600 ms a unit, clients already at the lowest fps: the queue can only grow.
    const t = await slowWorkerApp(600, {
      FPS: '1',
      BATCH_FRAMES: '1',
      WINDOW_FRAMES: '10',
      LATENCY_TARGET_MS: '200',
      RATE_BURST_FRAMES: '1000',
    });
    try {
      const faces = scene('face');
      const busy = await Promise.all([1, 2, 3].map(() => TestClient.connect(t.url)));
      const feeding = setInterval(() => busy.forEach((c) => c.sendFrame(faces[0])), 250);
      let refused: TestClient | null = null;
      for (let i = 0; i < 30 && !refused; i++) {
        await new Promise((r) => setTimeout(r, 500));
        const c = await TestClient.connect(t.url, null);
        c.sendRaw(JSON.stringify({ type: 'hello' }));
        const first = await c.waitFor((m) => m.type === 'welcome' || m.type === 'error');
        if (first.type === 'error') refused = c;
        else c.close();
      }
      clearInterval(feeding);
      expect(refused).not.toBeNull();
      expect(refused!.errors()[0]).toMatchObject({ code: 'overloaded', fatal: true });
      expect((await refused!.waitForClose()).code).toBe(1013);
      expect(t.logs.some((l) => l.event === 'overload' && l.accepting === false)).toBe(true);
      // The instance tells the load balancer too.
      expect((await fetch(`${t.base}/readyz`)).status).toBe(503);
      busy.forEach((c) => c.close());
      // With the load gone the queue drains and sessions are accepted again.
      let accepted = false;
      for (let i = 0; i < 40 && !accepted; i++) {
        await new Promise((r) => setTimeout(r, 500));
        accepted = (await fetch(`${t.base}/readyz`)).status === 200;
      }
      expect(accepted).toBe(true);
      const c = await TestClient.connect(t.url);
      expect(c.welcome).toBeDefined();
      c.close();
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe("a session's queue limit", () => {
  it('sheds only as many of its oldest units as it is over the limit', async () => {
    // One worker busy 400 ms a unit, units of one frame, at most 2 waiting per session.
    const t = await slowWorkerApp(400, {
      FPS: '30',
      BATCH_FRAMES: '1',
      WINDOW_FRAMES: '10',
      RATE_BURST_FRAMES: '1000',
      SESSION_QUEUE_UNITS: '2',
      MAX_UNIT_AGE_MS: '60000',
    });
    try {
      const faces = scene('face');
      const c = await TestClient.connect(t.url);
      // seq 0 goes to the worker, 1 and 2 wait, 3 puts the session one unit over its limit.
      for (let i = 0; i < 4; i++) c.sendFrame(faces[i]);
      const summary = await c.bye();
      const batches = c.results('batch');
      expect(batches.map((b) => [b.seqFrom, b.framesAnalyzed, b.counts.shed])).toEqual([
        [0, 1, 0],
        [1, 0, 1],
        [2, 1, 0],
        [3, 1, 0],
      ]);
      expect(summary.framesAnalyzed).toBe(3);
      expect(summary.dropped).toMatchObject({ shed: 1 });
    } finally {
      await t.close();
    }
  }, 30_000);
});

describe('sessions that send nothing', () => {
  it('do not lower the share of the capacity each sending session is throttled to', async () => {
    // One worker that takes 100 ms a unit of one frame: about 9.5 frames a second in all, 4.7 for each of two senders.
    const t = await slowWorkerApp(100, {
      FPS: '10',
      BATCH_FRAMES: '1',
      WINDOW_FRAMES: '3000',
      SESSION_QUEUE_UNITS: '4',
      RATE_BURST_FRAMES: '30',
      LATENCY_TARGET_MS: '500',
      MAX_UNIT_AGE_MS: '60000',
    });
    try {
      const faces = scene('face');
      const idle = await Promise.all(Array.from({ length: 6 }, () => TestClient.connect(t.url)));
      const senders = await Promise.all([0, 1].map(() => TestClient.connect(t.url)));
      // Senders that do as they are told: 10 fps until throttled, then the throttle's fps.
      let stop = false;
      const loops = senders.map(async (c) => {
        let n = 0;
        while (!stop) {
          c.sendFrame(faces[n++ % faces.length]);
          const throttle = c.messages.filter((m) => m.type === 'throttle').at(-1);
          await new Promise((r) => setTimeout(r, 1000 / (throttle?.fps ?? 10)));
        }
      });
      await new Promise((r) => setTimeout(r, 9000));
      stop = true;
      await Promise.all(loops);
      for (const c of senders) {
        const throttles = c.messages.filter((m) => m.type === 'throttle').map((m) => m.fps as number);
        expect(throttles.length).toBeGreaterThan(0);
        // Shared by all 8 sessions the fps would settle near 1; shared by the two that send, near 4.7.
        expect(throttles.at(-1), JSON.stringify(throttles)).toBeGreaterThanOrEqual(2.5);
      }
      for (const c of [...idle, ...senders]) c.close();
    } finally {
      await t.close();
    }
  }, 30_000);
});
