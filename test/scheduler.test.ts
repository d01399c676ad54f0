import { describe, expect, it } from 'vitest';
import { FrameBudget } from '../src/handler/frame-budget.js';
import { lookAhead, Scheduler, type SchedulerLimits } from '../src/handler/scheduler.js';
import { WorkerRequestError } from '../src/ipc/worker.js';
import { fakeClock, FakeWorkers, settle } from './helpers/fake-workers.js';
import { owner, unit, type RecordingOwner } from './helpers/units.js';

const LIMITS: SchedulerLimits = { sessionQueueUnits: 100, sessionQueueBytes: 1024 ** 3, maxUnitAgeMs: 3000 };

function setup(workers = 1, limits: Partial<SchedulerLimits> = {}, budgetBytes = 1024 ** 3) {
  const pool = new FakeWorkers(workers);
  const budget = new FrameBudget(budgetBytes);
  const clock = fakeClock();
  const scheduler = new Scheduler(pool, budget, { ...LIMITS, ...limits }, { now: clock.now });
  /** Queue `n` units of 5 frames for `o`, seqs from `from`, cut now. */
  const feed = (o: RecordingOwner, n: number, from = 0, spec: { bytes?: number; closesWindow?: boolean } = {}) => {
    for (let i = 0; i < n; i++) scheduler.enqueue(o, unit(budget, o, { seqFrom: from + i * 5, frames: 5, createdAt: clock.t, ...spec }));
  };
  return { pool, budget, clock, scheduler, feed, w: pool.list };
}

describe('fairness', () => {
  it('serves the sessions with a unit ready round-robin: a busy session cannot starve quiet ones', async () => {
    const { scheduler, feed, w } = setup(1);
    const busy = owner('busy');
    const quiet = [owner('q1'), owner('q2')];
    feed(busy, 8);
    for (const q of quiet) feed(q, 2);
    const order: string[] = [];
    while (w[0].pending.length > 0) {
      order.push(w[0].answer().session);
      await settle();
    }
    expect(order).toEqual(['busy', 'q1', 'q2', 'busy', 'q1', 'q2', 'busy', 'busy', 'busy', 'busy', 'busy', 'busy']);
    expect(scheduler.queuedUnits()).toBe(0);
  });

  it('puts a session that got a unit answered behind the sessions already waiting', async () => {
    const { feed, w } = setup(1);
    const a = owner('a');
    const b = owner('b');
    feed(a, 2);
    // b waits while a's first unit is at the worker; a's second is not in the ring until that is answered.
    feed(b, 1);
    w[0].answer();
    await settle();
    expect(w[0].pending.map((r) => r.meta.session)).toEqual(['b']);
    w[0].answer();
    await settle();
    expect(w[0].pending.map((r) => r.meta.session)).toEqual(['a']);
  });
});

describe('units at workers', () => {
  it('sends at most one unit of a session to the workers, however many are free', async () => {
    const { feed, pool, w } = setup(3);
    const a = owner('a');
    feed(a, 4);
    expect(pool.pendingCount).toBe(1);
    w[0].answer();
    await settle();
    expect(pool.pendingCount).toBe(1);
    expect(a.answers.map((x) => x.seqFrom)).toEqual([0]);
  });

  it("builds each request after the previous unit is answered, so it carries that unit's context", async () => {
    const { feed, w } = setup(2);
    const a = owner('a');
    feed(a, 3);
    for (let i = 0; i < 3; i++) {
      const worker = w.find((x) => x.pending.length > 0)!;
      worker.answer();
      await settle();
    }
    expect(a.requests.map((r) => r.context)).toEqual([{ after: 0 }, { after: 1 }, { after: 2 }]);
    expect(a.answers.map((x) => [x.seqFrom, x.answer.kind])).toEqual([
      [0, 'result'],
      [5, 'result'],
      [10, 'result'],
    ]);
  });

  it('feeds a worker ahead of its answers by its model time: 4 under 1 ms, 2 under 5 ms, else 1', () => {
    expect([0, 0.99, 1, 4.99, 5, 100, Infinity].map(lookAhead)).toEqual([4, 4, 2, 2, 1, 1, 1]);
    for (const [modelMs, expected] of [
      [0.5, 4],
      [3, 2],
      [20, 1],
      [Infinity, 1],
    ] as const) {
      const { scheduler, feed, w } = setup(1);
      w[0].modelMsAvg = modelMs;
      const sessions = Array.from({ length: 6 }, (_, i) => owner(`s${i}`));
      for (const s of sessions) feed(s, 1);
      expect([w[0].pending.length, scheduler.unitsAt(w[0])]).toEqual([expected, expected]);
      expect(scheduler.queuedUnits()).toBe(6 - expected);
    }
  });

  it('gives the next unit to the ready worker holding the fewest', () => {
    const { feed, w } = setup(2);
    for (const x of w) x.modelMsAvg = 0.1;
    w[1].ready = false;
    const sessions = Array.from({ length: 5 }, (_, i) => owner(`s${i}`));
    feed(sessions[0], 1);
    w[1].ready = true;
    for (const s of sessions.slice(1)) feed(s, 1);
    expect(w.map((x) => x.pending.map((r) => r.meta.session))).toEqual([
      ['s0', 's2', 's4'],
      ['s1', 's3'],
    ]);
  });

  it('sends nothing while no worker is ready, and starts when one is', () => {
    const { feed, pool, w } = setup(1);
    w[0].ready = false;
    feed(owner('a'), 1);
    expect(pool.pendingCount).toBe(0);
    pool.ready(w[0]);
    expect(w[0].pending.map((r) => r.meta.session)).toEqual(['a']);
  });
});

describe('results per session', () => {
  it('come back in the order the units were queued, with their frames freed', async () => {
    const { budget, feed, w } = setup(3);
    for (const x of w) x.modelMsAvg = 0.1;
    const sessions = [owner('a'), owner('b'), owner('c')];
    for (const s of sessions) feed(s, 4);
    // Answer in an order that mixes sessions and workers.
    for (let round = 0; round < 20 && w.some((x) => x.pending.length > 0); round++) {
      const worker = w[(round * 2) % 3].pending.length > 0 ? w[(round * 2) % 3] : w.find((x) => x.pending.length > 0)!;
      worker.answer();
      await settle();
    }
    for (const s of sessions) expect(s.answers.map((x) => x.seqFrom)).toEqual([0, 5, 10, 15]);
    expect(budget.used).toBe(0);
  });
});

describe('worker loss', () => {
  it('retries a unit whose worker died once, first in line, on the next free worker', async () => {
    const { feed, pool, w } = setup(2);
    const [a, b, c] = [owner('a'), owner('b'), owner('c')];
    feed(a, 1);
    feed(b, 1);
    feed(c, 1);
    expect(w.map((x) => x.pending.map((r) => r.meta.session))).toEqual([['a'], ['b']]);
    w[0].crash();
    await settle();
    // w0 is gone and w1 busy: the retry waits, ahead of c.
    expect(pool.pendingCount).toBe(1);
    w[1].answer();
    await settle();
    expect(w[1].pending.map((r) => r.meta.session)).toEqual(['a']);
    w[1].answer();
    await settle();
    expect(w[1].pending.map((r) => r.meta.session)).toEqual(['c']);
    expect(a.answers.map((x) => [x.seqFrom, x.frames, x.answer.kind])).toEqual([[0, 5, 'result']]);
    expect(a.requests).toHaveLength(2);
  });

  it('answers a unit whose second worker died too as failed, and goes on with the next', async () => {
    const { budget, feed, pool, w } = setup(2);
    const a = owner('a');
    feed(a, 2);
    w[0].crash();
    await settle();
    expect(w[1].pending.map((r) => r.meta.frames[0].seq)).toEqual([0]);
    w[1].crash();
    await settle();
    expect(a.answers).toHaveLength(1);
    const first = a.answers[0];
    expect(first.seqFrom).toBe(0);
    expect(first.answer.kind).toBe('failed');
    expect(first.answer.kind === 'failed' && first.answer.error instanceof WorkerRequestError && first.answer.error.failure).toBe('crash');
    // The next unit waits for a worker, then goes.
    expect(pool.pendingCount).toBe(0);
    pool.ready(w[0]);
    w[0].answer();
    await settle();
    expect(a.answers.map((x) => [x.seqFrom, x.answer.kind])).toEqual([
      [0, 'failed'],
      [5, 'result'],
    ]);
    expect(budget.used).toBe(0);
  });

  it('does not retry a unit that timed out or that the model failed', async () => {
    for (const failure of ['timeout', 'model'] as const) {
      const { feed, pool, w } = setup(2);
      const a = owner('a');
      feed(a, 1);
      w[0].fail(failure);
      await settle();
      expect(pool.pendingCount).toBe(0);
      expect(a.answers.map((x) => x.answer.kind)).toEqual(['failed']);
    }
  });

  it('retries every unit a dead worker held ahead, each for its own session', async () => {
    const { feed, w } = setup(2);
    w[0].modelMsAvg = 0.1;
    w[1].ready = false;
    const sessions = [owner('a'), owner('b'), owner('c')];
    for (const s of sessions) feed(s, 1);
    expect(w[0].pending).toHaveLength(3);
    w[0].crash();
    w[1].ready = true;
    w[1].modelMsAvg = 0.1;
    await settle();
    expect(w[1].pending.map((r) => r.meta.session).sort()).toEqual(['a', 'b', 'c']);
    while (w[1].pending.length > 0) w[1].answer();
    await settle();
    for (const s of sessions) expect(s.answers.map((x) => x.answer.kind)).toEqual(['result']);
  });
});

describe('shedding', () => {
  it('sheds the frames of a unit that waited past maxUnitAgeMs; one that closes no window is answered without a worker', async () => {
    const { clock, feed, w, budget } = setup(1, { maxUnitAgeMs: 3000 });
    const a = owner('a');
    feed(a, 3);
    clock.advance(3001);
    w[0].answer();
    await settle();
    expect(a.shedFrames).toEqual(new Map([[5, 5], [10, 5]]));
    expect(a.answers.map((x) => [x.seqFrom, x.frames, x.answer.kind])).toEqual([
      [0, 5, 'result'],
      [5, 0, 'skipped'],
      [10, 0, 'skipped'],
    ]);
    expect(w[0].received).toHaveLength(1);
    expect(budget.used).toBe(0);
  });

  it('sends a stale unit that closes a window to a worker empty, so the window closes', async () => {
    const { clock, feed, w } = setup(1, { maxUnitAgeMs: 3000 });
    const a = owner('a');
    feed(a, 1);
    feed(a, 1, 5, { closesWindow: true });
    clock.advance(3001);
    w[0].answer();
    await settle();
    expect(w[0].pending.map((r) => [r.meta.frames.length, r.meta.closesWindow])).toEqual([[0, true]]);
    expect(a.shedFrames.get(5)).toBe(5);
  });

  it('keeps a unit that waited exactly maxUnitAgeMs', async () => {
    const { clock, feed, w } = setup(1, { maxUnitAgeMs: 3000 });
    const a = owner('a');
    feed(a, 2);
    clock.advance(3000);
    w[0].answer();
    await settle();
    expect(w[0].pending.map((r) => r.meta.frames.length)).toEqual([5]);
    expect(a.shedFrames.size).toBe(0);
  });

  it("sheds a session's oldest waiting units past its queue limit, only as many as it is over", async () => {
    const { feed, w } = setup(1, { sessionQueueUnits: 2 });
    const a = owner('a');
    // seq 0 goes to the worker, 5 and 10 wait, 15 puts the session one unit over its limit.
    feed(a, 4);
    expect(a.shedFrames).toEqual(new Map([[5, 5]]));
    for (let i = 0; i < 3; i++) {
      w[0].answer();
      await settle();
    }
    expect(a.answers.map((x) => [x.seqFrom, x.answer.kind])).toEqual([
      [0, 'result'],
      [5, 'skipped'],
      [10, 'result'],
      [15, 'result'],
    ]);
  });

  it("sheds a session's oldest waiting units past its queue bytes", () => {
    const { feed } = setup(1, { sessionQueueBytes: 12_000 });
    const a = owner('a');
    // 5 frames of 1000 bytes a unit: the first is at the worker, two waiting are 10 000 bytes, a third 15 000.
    feed(a, 4);
    expect(a.shedFrames).toEqual(new Map([[5, 5]]));
  });

  it('makes room in a full budget by shedding the oldest unit of the session furthest above its fair share', () => {
    // 40 000 bytes for 2 sessions: 20 000 each.
    const { budget, scheduler, feed } = setup(1, {}, 40_000);
    const heavy = owner('heavy');
    const light = owner('light');
    feed(light, 1); // at the worker: 5 000 held
    feed(heavy, 7); // all waiting: 35 000 held
    expect(budget.hasRoom(1000)).toBe(false);
    expect(scheduler.shedFor(1000, light, 2)).toBe(true);
    // One unit (5 000 bytes) was enough: heavy's oldest.
    expect(heavy.shedFrames).toEqual(new Map([[0, 5]]));
    expect(light.shedFrames.size).toBe(0);
    expect(budget.hasRoom(1000)).toBe(true);
    expect(scheduler.shedTotal).toBe(5);
  });

  it('refuses to make room for a session already at its share, and never sheds a session below its share', () => {
    const { budget, scheduler, feed } = setup(1, {}, 40_000);
    const heavy = owner('heavy');
    const other = owner('other');
    feed(heavy, 4); // 20 000: exactly its share of two
    feed(other, 4); // 20 000: the budget is full
    expect(budget.hasRoom(1)).toBe(false);
    expect(scheduler.shedFor(1000, heavy, 2)).toBe(false); // would go above its share
    expect(scheduler.shedFor(1000, owner('new'), 2)).toBe(false); // nobody is above the share
    expect(scheduler.shedTotal).toBe(0);
    expect([heavy.shedFrames.size, other.shedFrames.size]).toEqual([0, 0]);
  });
});

describe('a session that goes away', () => {
  it('has its waiting units dropped and freed; its unit at a worker is still answered, and nothing more is sent', async () => {
    const { budget, scheduler, feed, pool, w } = setup(1);
    const a = owner('a');
    const b = owner('b');
    feed(a, 4);
    feed(b, 1);
    expect(scheduler.remove(a)).toBe(15);
    expect(budget.used).toBe(2 * 5000); // a's unit at the worker, b's waiting
    expect(scheduler.queuedUnits()).toBe(1);
    w[0].answer();
    await settle();
    expect(a.answers.map((x) => [x.seqFrom, x.answer.kind])).toEqual([[0, 'result']]);
    expect(w[0].pending.map((r) => r.meta.session)).toEqual(['b']);
    w[0].answer();
    await settle();
    expect(pool.pendingCount).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('gets no retry for a unit at a worker that died after it went away', async () => {
    const { scheduler, feed, pool, w } = setup(2);
    const a = owner('a');
    feed(a, 1);
    scheduler.remove(a);
    w[0].crash();
    await settle();
    expect(pool.pendingCount).toBe(0);
    expect(a.answers.map((x) => x.answer.kind)).toEqual(['failed']);
  });
});

describe('what the load monitor reads', () => {
  it('counts waiting units, the oldest wait on the injected clock, frames shed and analysed', async () => {
    const { clock, scheduler, feed, w } = setup(1, { maxUnitAgeMs: 60_000 });
    const a = owner('a');
    const b = owner('b');
    feed(a, 2);
    clock.advance(700);
    feed(b, 1);
    clock.advance(300);
    expect(scheduler.queuedUnits()).toBe(2);
    expect(scheduler.oldestWaitMs()).toBe(1000);
    w[0].answer({ undecodable: [1] });
    await settle();
    expect(scheduler.analysedTotal).toBe(4);
    // b went next (it waited in the ring before a's unit was answered): a's second unit is the oldest now.
    expect(w[0].pending.map((r) => r.meta.session)).toEqual(['b']);
    expect(scheduler.oldestWaitMs()).toBe(1000);
    expect(scheduler.idle(a)).toBe(false);
    expect(scheduler.idle(owner('never-seen'))).toBe(true);
  });

  it('stops sending units once closed', () => {
    const { scheduler, feed, pool } = setup(1);
    scheduler.close();
    feed(owner('a'), 1);
    expect(pool.pendingCount).toBe(0);
  });
});
