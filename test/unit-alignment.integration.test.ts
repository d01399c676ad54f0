import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnitAlignment } from '../src/handler/unit-alignment.js';
import { seededRandom } from '../bench/src/load-generator.js';
import { scene, startTestApp, type TestApp } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

const PERIOD = 1000;

/** Smallest circular distance between any two phases. */
function minGap(phases: number[]): number {
  const s = [...phases].map((p) => ((p % PERIOD) + PERIOD) % PERIOD).sort((a, b) => a - b);
  let gap = s[0] + PERIOD - s[s.length - 1];
  for (let i = 1; i < s.length; i++) gap = Math.min(gap, s[i] - s[i - 1]);
  return gap;
}

/**
 * Sessions that obey: each completes a unit once a period at its phase, and
 * an align delays every later unit by delayMs. Returns the phases and the
 * aligns sent in each period.
 */
function simulate(start: number[], periods: number, jitter = 0, seed = 7) {
  const alignment = new UnitAlignment<number>(PERIOD);
  const random = seededRandom(seed);
  const phases = [...start];
  const alignsPerPeriod: number[] = [];
  const aligned = phases.map(() => 0);
  for (let k = 0; k < periods; k++) {
    const events = phases.map((p, i) => ({ i, at: k * PERIOD + p + (random() - 0.5) * 2 * jitter })).sort((a, b) => a.at - b.at);
    let n = 0;
    for (const { i, at } of events) {
      const delay = alignment.observe(i, at);
      if (delay === null) continue;
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(PERIOD);
      phases[i] += delay;
      aligned[i]++;
      n++;
    }
    alignsPerPeriod.push(n);
  }
  return { phases, alignsPerPeriod, aligned };
}

describe('UnitAlignment', () => {
  it('spreads sessions that started at random phases, and then leaves them alone', () => {
    for (const n of [12, 57, 69, 150]) {
      const random = seededRandom(n);
      const start = Array.from({ length: n }, () => random() * PERIOD);
      const spacing = PERIOD / n;
      expect(minGap(start)).toBeLessThan(spacing / 5);
      const { phases, alignsPerPeriod, aligned } = simulate(start, 30, 0.5);
      expect(minGap(phases)).toBeGreaterThanOrEqual(spacing / 3);
      expect(alignsPerPeriod.slice(-10).reduce((a, b) => a + b)).toBeLessThanOrEqual(n / 50);
      // Few sessions move, and none more than a few times.
      expect(aligned.filter((a) => a > 0).length).toBeLessThan(n * 0.75);
      expect(Math.max(...aligned)).toBeLessThanOrEqual(3);
    }
  });

  it('settles although each unit is cut a few ms early or late, moving no session again and again', () => {
    for (const n of [58, 87, 150]) {
      const random = seededRandom(n + 1);
      const start = Array.from({ length: n }, () => random() * PERIOD);
      const { phases, alignsPerPeriod, aligned } = simulate(start, 60, 5);
      const late = alignsPerPeriod.slice(30).reduce((a, b) => a + b);
      // Fewer than one session in five moves once more in the last 30 periods, however small the spacing
      // (each move pauses one session's capture for less than a period: well under 0.1 % of the frames).
      expect(late).toBeLessThan(n / 5);
      expect(Math.max(...aligned)).toBeLessThanOrEqual(4);
      expect(minGap(phases)).toBeGreaterThan(0);
    }
  });

  it('aligns nobody once the even spacing is below a few ms, closer than units can be placed', () => {
    const random = seededRandom(3);
    const { alignsPerPeriod } = simulate(Array.from({ length: 300 }, () => random() * 20), 10);
    expect(alignsPerPeriod.every((a) => a === 0)).toBe(true);
    expect(simulate(Array.from({ length: 200 }, () => random() * 20), 10).alignsPerPeriod.some((a) => a > 0)).toBe(true);
  });

  it('leaves sessions that are already spread where they are', () => {
    const n = 40;
    const { alignsPerPeriod } = simulate(Array.from({ length: n }, (_, i) => (i * PERIOD) / n), 10, 2);
    expect(alignsPerPeriod.every((a) => a === 0)).toBe(true);
  });

  it('moves a crowded session to the middle of the widest gap between the others', () => {
    const alignment = new UnitAlignment<string>(PERIOD);
    const period = (k: number, units: Array<[string, number]>) => units.map(([key, phase]) => alignment.observe(key, k * PERIOD + phase));
    // Judged from their second unit on: a, b and c are spread, and d's first unit is only seen.
    expect(period(5, [['a', 0], ['b', 250], ['c', 500]])).toEqual([null, null, null]);
    expect(period(6, [['a', 0], ['b', 250], ['c', 500], ['d', 505]])).toEqual([null, null, null, null]);
    // c, 5 ms from d, goes to the middle of the gap from d (505) to a (1000): 752.5.
    expect(period(7, [['a', 0], ['b', 250], ['c', 500], ['d', 505]])).toEqual([null, null, 253, null]);
    expect(period(8, [['a', 0], ['b', 250], ['c', 753], ['d', 505]])).toEqual([null, null, null, null]);
    expect(alignment.size).toBe(4);
  });

  it('asks a session that does not follow again only after a quiet time', () => {
    const alignment = new UnitAlignment<string>(PERIOD);
    const asked: Record<string, number[]> = { a: [], b: [] };
    for (let k = 0; k < 60; k++) {
      for (const [key, phase] of [['a', 300], ['b', 301]] as const) if (alignment.observe(key, k * PERIOD + phase) !== null) asked[key].push(k);
    }
    expect(asked.a.length + asked.b.length).toBeGreaterThan(2);
    // Asked again after 5 periods at least, then after twice as long each time.
    for (const ks of Object.values(asked)) {
      const gaps = ks.slice(1).map((k, i) => k - ks[i]);
      gaps.forEach((g, i) => expect(g).toBeGreaterThanOrEqual(5 * 2 ** i));
    }
  });

  it('forgets sessions that stopped, and alone asks nothing', () => {
    const alignment = new UnitAlignment<string>(PERIOD);
    expect(alignment.observe('a', 1000)).toBeNull();
    expect(alignment.observe('a', 2000)).toBeNull();
    alignment.observe('b', 2500);
    // b stops; four periods later a's phase-mate has gone stale and a new session next to it is not crowded.
    expect(alignment.observe('a', 6000)).toBeNull();
    expect(alignment.size).toBe(1);
    alignment.observe('c', 6500);
    alignment.forget('c');
    expect(alignment.observe('a', 7000)).toBeNull();
    expect(alignment.size).toBe(1);
  });
});

describe('align, against a real instance', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ RATE_BURST_FRAMES: '10' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('spreads sessions that all capture at the same moment; one that ignores align is still served', async () => {
    const images = scene('face');
    const clients = await Promise.all(Array.from({ length: 7 }, () => TestClient.connect(t.url)));
    const obeys = clients.map((_, i) => i !== 3);
    // Every session captures on one shared clock, 5 fps, in step: the worst case.
    const start = Date.now() + 100;
    const next = clients.map(() => start);
    const seq = clients.map(() => 0);
    const aligned = clients.map(() => 0);
    /** Send time of each unit's last frame (seq 4, 9, …), per session. */
    const unitEnds: number[][] = clients.map(() => []);
    // Stream until the sessions have settled: most were moved, and since the latest align every session has
    // had QUIET_UNITS more results (a session just moved is left alone for 5 periods, so 6 say the others
    // are done too). Bounded, so that sessions that never settle fail the test.
    const QUIET_UNITS = 6;
    const batches = () => clients.map((c) => c.results('batch').length);
    let alignsSeen = 0;
    let batchesAtLastAlign = batches();
    const settled = () => {
      const aligns = clients.reduce((n, c) => n + c.messages.filter((m) => m.type === 'align').length, 0);
      if (aligns !== alignsSeen) {
        alignsSeen = aligns;
        batchesAtLastAlign = batches();
      }
      const moved = clients.filter((c) => c.messages.some((m) => m.type === 'align')).length;
      return moved >= 5 && batches().every((n, i) => n >= batchesAtLastAlign[i] + QUIET_UNITS);
    };
    const giveUpAt = start + 40_000;
    while (!settled()) {
      const now = Date.now();
      if (now > giveUpAt) throw new Error(`the sessions did not settle: ${alignsSeen} aligns, ${batches().join(' ')} results, at ${batchesAtLastAlign.join(' ')} at the last align`);
      clients.forEach((c, i) => {
        const aligns = c.messages.filter((m) => m.type === 'align');
        for (; aligned[i] < aligns.length; aligned[i]++) if (obeys[i]) next[i] += aligns[aligned[i]].delayMs;
        if (now < next[i]) return;
        const s = seq[i]++;
        c.sendFrame(images[s % images.length], s, next[i]);
        if (s % 5 === 4) unitEnds[i].push(next[i]);
        next[i] += 200;
      });
      await new Promise((r) => setTimeout(r, 2));
    }
    for (const c of clients) await c.bye();

    for (const c of clients) {
      const align = c.messages.filter((m) => m.type === 'align');
      for (const a of align) {
        expect(Number.isInteger(a.delayMs)).toBe(true);
        expect(a.delayMs).toBeGreaterThan(0);
        expect(a.delayMs).toBeLessThan(1000);
      }
      expect(c.errors()).toEqual([]);
    }
    expect(clients.filter((c) => c.messages.some((m) => m.type === 'align')).length).toBeGreaterThanOrEqual(5);
    // Where each session's last unit ended: spread over the second, none within 40 ms of another.
    const phases = unitEnds.map((ends) => ends[ends.length - 1] % 1000);
    expect(minGap(phases)).toBeGreaterThan(40);
    // A delay never makes a client send too fast, and the session that kept its schedule is served like the
    // others: every frame of every session analysed.
    clients.forEach((c, i) => {
      expect(c.messages.find((m) => m.type === 'summary')!.framesAnalyzed).toBe(seq[i]);
      expect(c.results('batch').reduce((n, r) => n + r.framesAnalyzed, 0)).toBe(seq[i]);
    });
  }, 60_000);

  it('is off with ALIGN_UNITS=false', async () => {
    const off = await startTestApp({ ALIGN_UNITS: 'false', WORKERS: '1' });
    try {
      // Three sessions in step on the instance without align, and, to show the same stream would be
      // aligned, three on the instance with it.
      const quiet = await Promise.all([0, 1, 2].map(() => TestClient.connect(off.url)));
      const control = await Promise.all([0, 1, 2].map(() => TestClient.connect(t.url)));
      const images = scene('face');
      // At the fps the server asks for, as a client does: units are cut once a period.
      const frameMs = 1000 / quiet[0].welcome!.fps;
      const units = 4;
      for (let s = 0; s < units * quiet[0].welcome!.batchFrames; s++) {
        for (const c of [...quiet, ...control]) c.sendFrame(images[s % images.length], s, Date.now());
        await new Promise((r) => setTimeout(r, frameMs));
      }
      // An align would come before the summary: the summary bounds the wait for one.
      for (const c of [...quiet, ...control]) await c.bye();
      for (const c of quiet) {
        expect(c.results('batch').length).toBe(units);
        expect(c.messages.filter((m) => m.type === 'align')).toEqual([]);
      }
      expect(control.flatMap((c) => c.messages.filter((m) => m.type === 'align')).length).toBeGreaterThan(0);
    } finally {
      await off.close();
    }
  }, 30_000);
});
