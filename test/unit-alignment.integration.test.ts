import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scene, startTestApp, type TestApp } from './helpers/app.js';
import { TestClient } from './helpers/client.js';
import { minGap as minGapIn } from './helpers/phases.js';

const PERIOD = 1000;
const minGap = (phases: number[]) => minGapIn(phases, PERIOD);

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
    // had QUIET_UNITS more results. A session just moved is left alone for 5 periods; one that ignores its
    // align keeps the phase it was asked to leave, and the server's record of it (smoothed, 1/4 a unit)
    // returns there within 7 units, after which a session it crowds is moved: 10 say all that is done.
    // Bounded, so that sessions that never settle fail the test.
    const QUIET_UNITS = 10;
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
