import { describe, expect, it } from 'vitest';
import { LoadMonitor, type LoadSample } from '../src/handler/load-monitor.js';

const TARGET = 2000;
const INTERVAL = 1000;

/** Feeds samples as deltas over one interval each, keeping the running totals. */
class Feed {
  private total = { shedTotal: 0, analysedTotal: 0 };
  constructor(readonly monitor: LoadMonitor) {
    monitor.tick({ ...this.total, oldestWaitMs: 0 }, 1, INTERVAL);
  }

  tick(d: { shed?: number; analysed?: number; wait?: number; sessions?: number }) {
    this.total = { shedTotal: this.total.shedTotal + (d.shed ?? 0), analysedTotal: this.total.analysedTotal + (d.analysed ?? 0) };
    const sample: LoadSample = { ...this.total, oldestWaitMs: d.wait ?? 0 };
    return this.monitor.tick(sample, d.sessions ?? 1, INTERVAL);
  }
}

describe('LoadMonitor', () => {
  it('starts at the full fps, accepting, not overloaded', () => {
    expect(new LoadMonitor(5, TARGET).current).toEqual({ fps: 5, accepting: true, overloaded: false });
  });

  it('stays at the full fps while the workers keep up', () => {
    const feed = new Feed(new LoadMonitor(5, TARGET));
    for (let i = 0; i < 5; i++) expect(feed.tick({ analysed: 50, wait: 300, sessions: 10 })).toEqual({ fps: 5, accepting: true, overloaded: false });
  });

  it('throttles to what the workers analysed per session, in tenths, while frames are shed', () => {
    const f = new Feed(new LoadMonitor(10, TARGET));
    // 22 frames analysed in 1 s by 4 sessions: 5.5 fps each.
    expect(f.tick({ shed: 3, analysed: 22, sessions: 4 })).toEqual({ fps: 5.5, accepting: true, overloaded: true });
  });

  it('steps down by 10% when what was analysed is above the fps already', () => {
    const f = new Feed(new LoadMonitor(10, TARGET));
    // 60 analysed by 4 sessions: 15 fps each, above the fps.
    expect(f.tick({ shed: 1, analysed: 60, sessions: 4 })).toEqual({ fps: 9, accepting: true, overloaded: true });
  });

  it('one slow second does not set the fps: the capacity is the most analysed, shrinking by 10% a second', () => {
    const f = new Feed(new LoadMonitor(10, TARGET));
    expect(f.tick({ shed: 1, analysed: 32, sessions: 4 }).fps).toBe(8);
    // Then only 4 analysed a second: the estimate goes 28.8, 25.9, ...
    expect([0, 1].map(() => f.tick({ shed: 1, analysed: 4, sessions: 4 }).fps)).toEqual([7.2, 6.4]);
  });

  it('throttles when the oldest unit waits longer than the target, deeper the longer the backlog', () => {
    const f = new Feed(new LoadMonitor(5, 1000));
    expect(f.tick({ analysed: 40, wait: 1000, sessions: 10 }).fps).toBe(5); // at the target: not overloaded
    // 40 analysed by 10 sessions: 4 fps each, less a quarter to drain 1 s of backlog within 4 s.
    expect(f.tick({ analysed: 40, wait: 1001, sessions: 10 })).toEqual({ fps: 2.9, accepting: true, overloaded: true });
    // Never less than half the capacity (the 40 a second measured before, less 10%): 2 s waited.
    expect(f.tick({ analysed: 20, wait: 2000, sessions: 10 }).fps).toBe(1.8);
  });

  it('does not act on its first sample, which measures nothing', () => {
    const m = new LoadMonitor(10, TARGET);
    // Sessions that arrived before the first tick already have a backlog; nothing says the workers cannot keep up.
    expect(m.tick({ shedTotal: 40, analysedTotal: 0, oldestWaitMs: 3000 }, 16, INTERVAL)).toEqual({ fps: 10, accepting: true, overloaded: false });
    // The next one measures 120 analysed in a second with a backlog: 7.5 fps for 16 sessions, less a quarter to drain 1 s of it.
    expect(m.tick({ shedTotal: 80, analysedTotal: 120, oldestWaitMs: 1000 }, 16, INTERVAL).fps).toBe(5.6);
  });

  it('under a steady overload holds each session near its share of the capacity, the queue under the target', () => {
    // Workers that analyse `capacity` frames a second, clients that send what they are told, a queue between.
    for (const [sessions, capacity] of [
      [120, 390],
      [111, 370],
      [90, 440],
      [800, 3300],
    ]) {
      const f = new Feed(new LoadMonitor(5, 1000));
      let queued = 0;
      const seconds: Array<{ fps: number; analysed: number; wait: number }> = [];
      for (let t = 0; t < 120; t++) {
        const fps = f.monitor.current.fps;
        queued += fps * sessions;
        const analysed = Math.min(queued, capacity);
        queued -= analysed;
        const wait = (queued / capacity) * 1000;
        f.tick({ analysed, wait, sessions });
        seconds.push({ fps, analysed, wait });
      }
      const settled = seconds.slice(20);
      const share = capacity / sessions;
      const label = `${sessions} sessions, ${capacity} frames/s`;
      expect(Math.min(...settled.map((x) => x.fps)), label).toBeGreaterThanOrEqual(share - 0.1);
      expect(Math.max(...settled.map((x) => x.fps)), label).toBeLessThanOrEqual(Math.min(5, share * 1.1 + 0.1));
      expect(Math.max(...settled.map((x) => x.wait)), label).toBeLessThan(1000);
      expect(settled.reduce((n, x) => n + x.analysed, 0) / settled.length, label).toBeGreaterThan(capacity * 0.98);
    }
  });

  it('uses the interval to turn counts into fps', () => {
    const m = new LoadMonitor(10, TARGET);
    m.tick({ shedTotal: 0, analysedTotal: 0, oldestWaitMs: 0 }, 1, 500);
    // 3 frames in 500 ms by one session: 6 fps.
    expect(m.tick({ shedTotal: 1, analysedTotal: 3, oldestWaitMs: 0 }, 1, 500).fps).toBe(6);
  });

  it('never throttles below 1 fps', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    expect(f.tick({ shed: 10, analysed: 0, sessions: 3 }).fps).toBe(1);
  });

  it('lifts every two ticks while the queue is short: by a tenth of the maximum, at most 10% above the capacity', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    f.tick({ shed: 1, analysed: 4, sessions: 2 }); // 2 each
    expect(f.monitor.current.fps).toBe(2);
    // The workers analyse all that comes, so the capacity is known only to be at least that: 10% steps.
    const fps = [];
    for (let i = 0; i < 23; i++) fps.push(f.tick({ analysed: f.monitor.current.fps * 2, wait: TARGET / 4, sessions: 2 }).fps);
    expect(fps).toEqual([2, 2.2, 2.2, 2.4, 2.4, 2.6, 2.6, 2.8, 2.8, 3, 3, 3.3, 3.3, 3.6, 3.6, 3.9, 3.9, 4.2, 4.2, 4.6, 4.6, 5, 5]);
    expect(f.monitor.current).toEqual({ fps: 5, accepting: true, overloaded: false });
    // Half the sessions gone, the capacity measured is twice each one's share: a tenth of the maximum a step.
    const g = new Feed(new LoadMonitor(5, TARGET));
    g.tick({ shed: 1, analysed: 4, sessions: 2 });
    g.tick({ analysed: 4, sessions: 2 });
    expect([0, 1, 2].map(() => g.tick({ analysed: g.monitor.current.fps, sessions: 1 }).fps)).toEqual([3.6, 3.6, 4.1]);
  });

  it('lifts straight back to 90% of the capacity it measured once the backlog is gone', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    // 80 analysed by 20 sessions (4 each) with 1.6 s of backlog: cut to 60% of that.
    expect(f.tick({ shed: 1, analysed: 80, wait: 1600, sessions: 20 }).fps).toBe(2.4);
    // Then the workers analyse all that comes, up to those 80 a second; lifts stop 10% above that.
    const fps = [0, 1, 2, 3, 4, 5, 6, 7].map(() => f.tick({ analysed: Math.min(80, f.monitor.current.fps * 20), wait: 100, sessions: 20 }).fps);
    expect(fps).toEqual([2.4, 3.6, 3.6, 4.1, 4.1, 4.4, 4.4, 4.5]);
  });

  it('holds the fps while the queue is between a quarter of the target and the target', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    f.tick({ shed: 1, analysed: 6, sessions: 2 }); // 3 each
    const held = [0, 1, 2, 3, 4, 5].map(() => f.tick({ analysed: 6, wait: TARGET / 4 + 1, sessions: 2 }).fps);
    expect(held).toEqual([3, 3, 3, 3, 3, 3]);
    expect(f.tick({ analysed: 6, wait: TARGET / 4, sessions: 2 }).fps).toBe(3.3);
  });

  it('steps back to the capacity when the queue grows, short of overload', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    f.tick({ shed: 1, analysed: 30, sessions: 10 }); // 3 each
    const fps = [0, 0, 600, 900, 1100, 1200, 1000, 800, 600, 400].map((wait) => f.tick({ analysed: 30, wait, sessions: 10 }).fps);
    // Lifted to 3.3 while the queue was short; it grew, but held while under half the target; past it: back to 3.
    // Then held while it drains, and lifted again once it is short.
    expect(fps).toEqual([3, 3.3, 3.3, 3.3, 3, 3, 3, 3, 3, 3.3]);
  });

  it('steps down by 10% when the workers keep up but the queue does not shrink, once the last change settled', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    const decisions = [0, 1, 2, 3, 4].map(() => f.tick({ shed: 1, analysed: 100, sessions: 1 }));
    expect(decisions.map((d) => [d.fps, d.accepting])).toEqual([
      [4.5, true],
      [4.5, true],
      [4, true],
      [4, true],
      [3.6, true],
    ]);
  });

  it('gives a draining queue time: no step down while the oldest wait shrinks', () => {
    const f = new Feed(new LoadMonitor(5, 1000));
    f.tick({ analysed: 20, wait: 1200, sessions: 10 }); // 2 each, less 30%: 1.4
    expect(f.monitor.current.fps).toBe(1.4);
    // The workers analyse more than now arrives and the backlog shrinks: hold.
    expect([1150, 1100, 1050].map((wait) => f.tick({ analysed: 30, wait, sessions: 10 }).fps)).toEqual([1.4, 1.4, 1.4]);
    // It stopped shrinking: step down.
    expect(f.tick({ analysed: 30, wait: 1060, sessions: 10 }).fps).toBe(1.2);
  });

  it('refuses new sessions only at the lowest fps and still overloaded after the change settled', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    // Down to 1 fps from 5 in one tick (nothing was analysed): still accepting.
    expect(f.tick({ shed: 5, analysed: 0, sessions: 3 })).toEqual({ fps: 1, accepting: true, overloaded: true });
    // Clients are given two ticks to react before the instance refuses.
    expect(f.tick({ shed: 5, analysed: 0, sessions: 3 })).toEqual({ fps: 1, accepting: true, overloaded: true });
    expect(f.tick({ shed: 5, analysed: 0, sessions: 3 })).toEqual({ fps: 1, accepting: false, overloaded: true });
  });

  it('accepts again once the wait falls under half the target, not before', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    f.tick({ shed: 5, sessions: 3 });
    f.tick({ shed: 5, sessions: 3 });
    expect(f.tick({ shed: 5, sessions: 3 }).accepting).toBe(false);
    // Not overloaded (nothing shed, wait within target) but still above half of it.
    expect(f.tick({ analysed: 3, wait: TARGET, sessions: 3 }).accepting).toBe(false);
    expect(f.tick({ analysed: 3, wait: TARGET / 2, sessions: 3 }).accepting).toBe(false);
    // Accepting again; the fps is lifted only once the queue is shorter still.
    expect(f.tick({ analysed: 3, wait: TARGET / 2 - 1, sessions: 3 })).toEqual({ fps: 1, accepting: true, overloaded: true });
    expect(f.tick({ analysed: 3, wait: TARGET / 4, sessions: 3 })).toEqual({ fps: 1.1, accepting: true, overloaded: true });
  });
});
