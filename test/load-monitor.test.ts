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

  it('throttles to 90% of the analysed fps per session, in tenths, while frames are shed', () => {
    const f = new Feed(new LoadMonitor(10, TARGET));
    // 60 frames analysed in 1 s by 4 sessions: 15 fps each, 90% is 13.5, above the fps: down by 10%.
    expect(f.tick({ shed: 1, analysed: 60, sessions: 4 })).toEqual({ fps: 9, accepting: true, overloaded: true });
    // 20 analysed by 4 sessions: 5 fps each, 90% is 4.5.
    expect(f.tick({ shed: 3, analysed: 20, sessions: 4 })).toEqual({ fps: 4.5, accepting: true, overloaded: true });
  });

  it('throttles when the oldest unit waits longer than the target, even with nothing shed', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    expect(f.tick({ analysed: 10, wait: TARGET, sessions: 2 }).fps).toBe(5); // at the target: not overloaded
    // 10 analysed by 2 sessions: 5 fps each, 90% is 4.5.
    expect(f.tick({ analysed: 10, wait: TARGET + 1, sessions: 2 })).toEqual({ fps: 4.5, accepting: true, overloaded: true });
    // 5 analysed by 2: 2.5 each, 90% is 2.25, floored to tenths.
    expect(f.tick({ analysed: 5, wait: TARGET + 1, sessions: 2 }).fps).toBe(2.2);
  });

  it('uses the interval to turn counts into fps', () => {
    const m = new LoadMonitor(10, TARGET);
    m.tick({ shedTotal: 0, analysedTotal: 0, oldestWaitMs: 0 }, 1, 500);
    // 3 frames in 500 ms by one session: 6 fps, 90% is 5.4.
    expect(m.tick({ shedTotal: 1, analysedTotal: 3, oldestWaitMs: 0 }, 1, 500).fps).toBe(5.4);
  });

  it('never throttles below 1 fps', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    expect(f.tick({ shed: 10, analysed: 0, sessions: 3 }).fps).toBe(1);
  });

  it('lifts by a tenth of the maximum every two ticks while the queue is short', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    f.tick({ shed: 1, analysed: 4, sessions: 2 }); // 2 each, 90% is 1.8
    expect(f.monitor.current.fps).toBe(1.8);
    const fps = [];
    for (let i = 0; i < 15; i++) fps.push(f.tick({ analysed: 10, wait: TARGET / 4, sessions: 2 }).fps);
    expect(fps).toEqual([1.8, 2.3, 2.3, 2.8, 2.8, 3.3, 3.3, 3.8, 3.8, 4.3, 4.3, 4.8, 4.8, 5, 5]);
    expect(f.monitor.current).toEqual({ fps: 5, accepting: true, overloaded: false });
  });

  it('holds the fps while the queue is between a quarter of the target and the target', () => {
    const f = new Feed(new LoadMonitor(5, TARGET));
    f.tick({ shed: 1, analysed: 6, sessions: 2 }); // 3 each, 90% is 2.7
    const held = [0, 1, 2, 3, 4, 5].map(() => f.tick({ analysed: 6, wait: TARGET / 4 + 1, sessions: 2 }).fps);
    expect(held).toEqual([2.7, 2.7, 2.7, 2.7, 2.7, 2.7]);
    expect(f.tick({ analysed: 6, wait: TARGET / 4, sessions: 2 }).fps).toBe(3.2);
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
    expect(f.tick({ analysed: 3, wait: TARGET / 4, sessions: 3 })).toEqual({ fps: 1.5, accepting: true, overloaded: true });
  });
});
