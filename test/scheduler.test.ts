import { describe, expect, it } from 'vitest';
import { FrameBudget } from '../src/handler/frame-budget.js';
import { lookAhead, Scheduler, type SchedulerLimits } from '../src/handler/scheduler.js';
import type { Unit } from '../src/handler/unit-builder.js';
import { WorkerRequestError } from '../src/ipc/worker.js';
import { answerUnit, fakeClock, FakeWorkers, settle, type FakeUnit, type FakeWorker } from './helpers/fake-workers.js';
import { owner, unit, type RecordingOwner } from './helpers/units.js';
import { seededRandom } from '../bench/src/phases.js';

const LIMITS: SchedulerLimits = { sessionQueueUnits: 100, sessionQueueBytes: 1024 ** 3, maxUnitAgeMs: 3000, framePeriodMs: 200, batchFrames: 5 };

/** frameMsAvg that gives a worker 4 frames of look-ahead, and 2; a new worker's (Infinity) gives 1. */
const AHEAD_4 = 0.5;
const AHEAD_2 = 3;

function setup(workers = 1, limits: Partial<SchedulerLimits> = {}, budgetBytes = 1024 ** 3) {
  const pool = new FakeWorkers(workers);
  const budget = new FrameBudget(budgetBytes);
  const clock = fakeClock();
  const scheduler = new Scheduler(pool, budget, { ...LIMITS, ...limits }, { now: clock.now });
  /** Queue `n` complete units of 5 frames for `o`, seqs from `from`, all received now. */
  const feed = (o: RecordingOwner, n: number, from = 0, spec: { closesWindow?: boolean } = {}) => {
    for (let i = 0; i < n; i++) scheduler.enqueue(o, unit(budget, o, { seqFrom: from + i * 5, frames: 5, createdAt: clock.t, ...spec }));
  };
  /** Queue an open unit of `o` from `seqFrom`, no frame yet. */
  const openUnit = (o: RecordingOwner, seqFrom = 0) => {
    const u = unit(budget, o, { seqFrom, frames: 0, complete: false, createdAt: clock.t });
    scheduler.enqueue(o, u);
    return u;
  };
  /** Frames `seqs` of `o` arrive into its open unit `u` at `receivedAt`. */
  const arrive = (o: RecordingOwner, u: Unit, seqs: number[], receivedAt = clock.t) => {
    for (const seq of seqs) {
      u.frames.push({ seq, captureTs: 1.7e12 + seq * 200, format: 1, width: 640, height: 480, image: budget.admit(o, Buffer.alloc(1000, seq)), receivedAt });
    }
    scheduler.update(o);
  };
  /** The unit is cut: no more frames come. */
  const cut = (o: RecordingOwner, u: Unit) => {
    u.complete = true;
    scheduler.update(o);
  };
  return { pool, budget, clock, scheduler, feed, openUnit, arrive, cut, w: pool.list };
}

const seqs = (u: FakeUnit) => u.frames.map((f) => f.seq);
const sessionsAt = (w: FakeWorker) => w.units.map((u) => u.meta.session);
const answered = (o: RecordingOwner) => o.answers.map((x) => [x.seqFrom, x.frames, x.answer.kind]);

/** Work every worker until none holds anything; what was done, in order ("a3": frame 3 of session a, "a:close"). */
async function drain(workers: readonly FakeWorker[]): Promise<string[]> {
  const done: string[] = [];
  for (;;) {
    await settle();
    const w = workers.find((x) => x.ops.length > 0);
    if (!w) return done;
    const op = w.step();
    done.push(op.kind === 'frame' ? `${op.unit.meta.session}${op.seq}` : `${op.unit.meta.session}:close`);
  }
}

describe('frames as they arrive', () => {
  it("sends an open unit's frames as they are added, closes it once cut, and answers it with the result", async () => {
    const { budget, clock, scheduler, openUnit, arrive, cut, w } = setup(1);
    w[0].frameMsAvg = AHEAD_4;
    const a = owner('a');
    const u = openUnit(a);
    // Nothing to open a worker with yet.
    expect([w[0].units.length, a.opens.length]).toEqual([0, 0]);
    arrive(a, u, [0]);
    expect(w[0].units.map(seqs)).toEqual([[0]]);
    clock.advance(200);
    arrive(a, u, [1, 2]);
    expect(w[0].units.map(seqs)).toEqual([[0, 1, 2]]);
    for (let i = 0; i < 3; i++) w[0].step();
    await settle();
    // Every frame is done, but the unit is not cut: no close, no answer.
    expect([w[0].ops.length, w[0].units[0].closesWindow, a.answers.length]).toEqual([0, null, 0]);
    clock.advance(200);
    arrive(a, u, [3, 4]);
    expect(w[0].units.map(seqs)).toEqual([[0, 1, 2, 3, 4]]);
    expect(w[0].units[0].closesWindow).toBeNull();
    clock.advance(50);
    cut(a, u);
    expect(w[0].units[0].closesWindow).toBe(false);
    expect(w[0].ops.map((o) => o.kind)).toEqual(['frame', 'frame', 'close']);
    expect(a.answers).toEqual([]);
    clock.advance(30);
    await answerUnit(w[0], { modelMs: 42 });
    expect(answered(a)).toEqual([[0, 5, 'result']]);
    // The last frame left as it arrived; the close waited for the cut, then 30 ms for its result.
    expect(a.answers[0].answer).toMatchObject({ kind: 'result', timing: { queueMs: 0, ipcMs: 30, modelMs: 42 } });
    expect(a.opens).toHaveLength(1);
    expect([budget.used, scheduler.idle(a), scheduler.heldAt(w[0])]).toEqual([0, true, 0]);
  });

  it("sends a complete unit's close only after its last frame, which waits for look-ahead", async () => {
    const { feed, w } = setup(1);
    const a = owner('a');
    feed(a, 1);
    expect(w[0].ops.map((o) => o.kind)).toEqual(['frame']);
    expect(w[0].units[0].closesWindow).toBeNull();
    expect(await drain(w)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'a:close']);
    expect(answered(a)).toEqual([[0, 5, 'result']]);
  });

  it("opens a session's next unit only once the previous is answered, with the context it returned", async () => {
    const { budget, feed, w } = setup(2);
    for (const x of w) x.frameMsAvg = AHEAD_4;
    const a = owner('a');
    feed(a, 3);
    for (let i = 0; i < 3; i++) {
      // One unit of the session at the workers, however many are free.
      expect(w.flatMap((x) => x.units)).toHaveLength(i + 1);
      expect(a.opens).toHaveLength(i + 1);
      await answerUnit(w.find((x) => x.ops.length > 0)!);
    }
    expect(a.opens.map((o) => o.context)).toEqual([{ after: 0 }, { after: 1 }, { after: 2 }]);
    expect(answered(a)).toEqual([
      [0, 5, 'result'],
      [5, 5, 'result'],
      [10, 5, 'result'],
    ]);
    expect(budget.used).toBe(0);
  });
});

describe('which frame goes next', () => {
  it('sends the frame with the oldest tag first, across sessions', async () => {
    const { budget, clock, pool, scheduler, w } = setup(1);
    w[0].ready = false;
    clock.advance(500);
    const [a, b, c] = [owner('a'), owner('b'), owner('c')];
    // Queued in the order a, b, c; received in the order b, c, a.
    scheduler.enqueue(a, unit(budget, a, { seqFrom: 0, frames: 1, createdAt: 1500 }));
    scheduler.enqueue(b, unit(budget, b, { seqFrom: 0, frames: 1, createdAt: 1000 }));
    scheduler.enqueue(c, unit(budget, c, { seqFrom: 0, frames: 1, createdAt: 1200 }));
    expect(pool.pendingCount).toBe(0);
    pool.ready(w[0]);
    expect(await drain(w)).toEqual(['b0', 'b:close', 'c0', 'c:close', 'a0', 'a:close']);
  });

  it('within one frame period, sends a close first, then the frame of the session whose last frame sent is oldest', async () => {
    const { budget, pool, scheduler, w } = setup(1);
    const [a, b, c] = [owner('a'), owner('b'), owner('c')];
    // a had a frame sent at 1000; c's frames at 1000 were all shed (it never had one sent); b's unit waits for its close.
    scheduler.enqueue(a, unit(budget, a, { seqFrom: 0, frames: 1, createdAt: 1000 }));
    expect(await drain(w)).toEqual(['a0', 'a:close']);
    w[0].ready = false;
    const ub = unit(budget, b, { seqFrom: 0, frames: 1, createdAt: 1420, complete: false });
    scheduler.enqueue(b, ub);
    pool.ready(w[0]);
    expect(await drain(w)).toEqual(['b0']);
    w[0].ready = false;
    // All in the period 1400–1600: a's frame arrived first, then c's, then b's unit was cut.
    scheduler.enqueue(a, unit(budget, a, { seqFrom: 5, frames: 1, createdAt: 1410 }));
    scheduler.enqueue(c, unit(budget, c, { seqFrom: 0, frames: 1, createdAt: 1450 }));
    ub.complete = true;
    scheduler.update(b);
    pool.ready(w[0]);
    expect(await drain(w)).toEqual(['b:close', 'c0', 'c:close', 'a5', 'a:close']);
  });

  it('sends first the frame due first: a frame of a complete unit at its tag, one of an open unit when its last frame is expected', async () => {
    const { budget, clock, pool, scheduler, openUnit, arrive, w } = setup(1);
    w[0].ready = false;
    const [a, b, c] = [owner('a'), owner('b'), owner('c')];
    // a: seqs 0 and 1 at 1000, due at 1800 (three and four frame periods before seq 4).
    arrive(a, openUnit(a), [0, 1]);
    // c: seq 3 at 1000, due at 1200, one frame period before its unit's last.
    arrive(c, openUnit(c), [3]);
    clock.advance(150);
    // b: a complete unit at 1150, due at once.
    scheduler.enqueue(b, unit(budget, b, { seqFrom: 0, frames: 1, createdAt: clock.t }));
    pool.ready(w[0]);
    expect(await drain(w)).toEqual(['b0', 'b:close', 'c3', 'a0', 'a1']);
    clock.advance(200);
    scheduler.enqueue(b, unit(budget, b, { seqFrom: 5, frames: 1, createdAt: clock.t }));
    expect(await drain(w)).toEqual(['b5', 'b:close']);
  });

  it("opens a unit at the worker with the fewest units open when they hold alike", async () => {
    const { scheduler, openUnit, arrive, w } = setup(2);
    for (const x of w) x.frameMsAvg = AHEAD_2;
    const [a, b, c] = [owner('a'), owner('b'), owner('c')];
    arrive(a, openUnit(a), [0]);
    await drain(w);
    // a's unit stays open at its worker, which now holds nothing, as the other does.
    expect(w.map((x) => scheduler.heldAt(x))).toEqual([0, 0]);
    arrive(b, openUnit(b), [0]);
    arrive(c, openUnit(c), [0]);
    expect(w.map(sessionsAt)).toEqual([['a', 'c'], ['b']]);
  });

  it("serves a burst at the session's nominal rate, interleaved with a session sending at that rate", async () => {
    const { budget, clock, pool, scheduler, w } = setup(1);
    w[0].ready = false;
    const burst = owner('a');
    const steady = owner('b');
    // a sent its 5 frames at once; b one every framePeriodMs.
    const ua = unit(budget, burst, { seqFrom: 0, frames: 5, createdAt: 1000 });
    const ub = unit(budget, steady, { seqFrom: 0, frames: 5, createdAt: 1000 });
    ub.frames.forEach((f, i) => (f.receivedAt = 1000 + 200 * i));
    clock.t = 1800;
    scheduler.enqueue(burst, ua);
    scheduler.enqueue(steady, ub);
    pool.ready(w[0]);
    expect(await drain(w)).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2', 'a3', 'b3', 'a4', 'a:close', 'b4', 'b:close']);
    expect([answered(burst), answered(steady)]).toEqual([[[0, 5, 'result']], [[0, 5, 'result']]]);
    expect(budget.used).toBe(0);
  });

  it("carries a session's tags on from unit to unit: its backlog does not jump ahead of a frame received after it", async () => {
    const { budget, clock, scheduler, feed, w } = setup(1);
    const busy = owner('busy');
    const quiet = owner('quiet');
    // Two units at once: the second one's frames are tagged from 2000 to 2800.
    feed(busy, 2);
    await answerUnit(w[0]);
    clock.t = 1500;
    scheduler.enqueue(quiet, unit(budget, quiet, { seqFrom: 0, frames: 1, createdAt: 1500 }));
    expect(await drain(w)).toEqual(['busy5', 'quiet0', 'quiet:close', 'busy6', 'busy7', 'busy8', 'busy9', 'busy:close']);
    expect(answered(busy).map((x) => x[0])).toEqual([0, 5]);
  });
});

describe('look-ahead', () => {
  it('is 4 frames under 1 ms a frame, 2 under 20 ms, else 1', () => {
    expect([0, 0.99, 1, 19.99, 20, 100, Infinity].map(lookAhead)).toEqual([4, 4, 2, 2, 1, 1, 1]);
  });

  it("holds a worker to its look-ahead in frames, whatever the sessions' frames waiting", async () => {
    for (const [frameMs, expected] of [
      [AHEAD_4, 4],
      [AHEAD_2, 2],
      [20, 1],
      [Infinity, 1],
    ] as const) {
      const { scheduler, feed, w } = setup(1);
      w[0].frameMsAvg = frameMs;
      const [a, b] = [owner('a'), owner('b')];
      feed(a, 1);
      feed(b, 1);
      expect([w[0].framesPending, scheduler.heldAt(w[0])]).toEqual([expected, expected]);
      w[0].step();
      await settle();
      // One frame done, one more goes.
      expect([w[0].framesPending, scheduler.heldAt(w[0])]).toEqual([expected, expected]);
      expect(scheduler.queuedUnits()).toBe(2);
    }
  });

  it('counts closes as held, and looks ahead by the longer of a frame and a close (a model that works at its close)', async () => {
    const { budget, clock, scheduler, w } = setup(1);
    w[0].frameMsAvg = AHEAD_4;
    w[0].closeMsAvg = 50;
    const [a, b] = [owner('a'), owner('b')];
    for (const o of [a, b]) scheduler.enqueue(o, unit(budget, o, { seqFrom: 0, frames: 1, createdAt: clock.t }));
    expect([w[0].ops.length, scheduler.heldAt(w[0])]).toEqual([1, 1]);
    w[0].step(); // a's frame: its close is due before b's frame, whose tag is no earlier
    await settle();
    expect(w[0].ops.map((o) => `${o.unit.meta.session}:${o.kind}`)).toEqual(['a:close']);
    w[0].closeMsAvg = 0;
    w[0].step();
    await settle();
    // A cheap close again: up to 4 held, b's frame and its close.
    expect(w[0].ops.map((o) => `${o.unit.meta.session}:${o.kind}`)).toEqual(['b:frame', 'b:close']);
    expect(answered(a)).toEqual([[0, 1, 'result']]);
  });

  it("holds each worker to its own look-ahead", () => {
    const { pool, scheduler, feed, w } = setup(2);
    w[0].frameMsAvg = AHEAD_4;
    w[1].frameMsAvg = 20;
    w[0].ready = false;
    w[1].ready = false;
    for (const s of ['a', 'b', 'c']) feed(owner(s), 1);
    w[1].ready = true;
    pool.ready(w[0]);
    expect(w.map((x) => x.framesPending)).toEqual([4, 1]);
    expect(w.map((x) => scheduler.heldAt(x))).toEqual([4, 1]);
    expect(w.map(sessionsAt)).toEqual([['a', 'c'], ['b']]);
  });

  it("keeps a unit's later frames on the worker it was opened at, while another session's unit goes to the other", async () => {
    const { budget, scheduler, openUnit, arrive, w } = setup(2);
    const a = owner('a');
    const b = owner('b');
    const u = openUnit(a);
    arrive(a, u, [0]);
    scheduler.enqueue(b, unit(budget, b, { seqFrom: 0, frames: 1, createdAt: 1000 }));
    expect(w.map(sessionsAt)).toEqual([['a'], ['b']]);
    arrive(a, u, [1]);
    // w1 gets free first: a's frame still waits for w0.
    w[1].step();
    await settle();
    expect(w.map((x) => x.framesPending)).toEqual([1, 0]);
    expect(w[0].units.map(seqs)).toEqual([[0]]);
    w[0].step();
    await settle();
    expect(w[0].units.map(seqs)).toEqual([[0, 1]]);
    expect(w.map(sessionsAt)).toEqual([['a'], ['b']]);
  });

  it('gives a unit\'s first frame to the ready worker holding the fewest frames', () => {
    const { budget, scheduler, w } = setup(2);
    for (const x of w) x.frameMsAvg = 0.1;
    w[1].ready = false;
    const sessions = Array.from({ length: 5 }, (_, i) => owner(`s${i}`));
    const one = (s: RecordingOwner) => scheduler.enqueue(s, unit(budget, s, { seqFrom: 0, frames: 1, createdAt: 1000 }));
    one(sessions[0]);
    w[1].ready = true;
    for (const s of sessions.slice(1)) one(s);
    // A one-frame unit holds two of a worker's four places (its frame and its close): the fifth waits.
    expect(w.map(sessionsAt)).toEqual([
      ['s0', 's2'],
      ['s1', 's3'],
    ]);
    expect(w.map((x) => scheduler.heldAt(x))).toEqual([4, 4]);
  });

  it('sends nothing while no worker is ready, and starts when one is', () => {
    const { feed, pool, w } = setup(1);
    w[0].ready = false;
    feed(owner('a'), 1);
    expect(pool.pendingCount).toBe(0);
    pool.ready(w[0]);
    expect(w[0].units.map((u) => [u.meta.session, seqs(u)])).toEqual([['a', [0]]]);
  });
});

describe('results per session', () => {
  it('come back in the order the units were queued, with their frames freed', async () => {
    const { budget, scheduler, feed, w } = setup(3);
    for (const x of w) x.frameMsAvg = AHEAD_2;
    const sessions = [owner('a'), owner('b'), owner('c')];
    for (const s of sessions) feed(s, 4);
    // Work the workers in an order that mixes sessions and workers.
    for (let round = 0; round < 500 && w.some((x) => x.ops.length > 0); round++) {
      const busy = w.filter((x) => x.ops.length > 0);
      busy[(round * 7) % busy.length].step();
      await settle();
    }
    for (const s of sessions) expect(answered(s)).toEqual([0, 5, 10, 15].map((seq) => [seq, 5, 'result']));
    expect(budget.used).toBe(0);
    expect(w.map((x) => scheduler.heldAt(x))).toEqual([0, 0, 0]);
  });
});

describe('worker loss', () => {
  it('sends a unit whose worker died mid-unit again, from its first frame, to another worker', async () => {
    const { budget, openUnit, arrive, cut, w } = setup(2);
    for (const x of w) x.frameMsAvg = AHEAD_4;
    const a = owner('a');
    const u = openUnit(a);
    arrive(a, u, [0, 1, 2]);
    w[0].step();
    w[0].step();
    await settle();
    expect(w[0].crash().map(seqs)).toEqual([[0, 1, 2]]);
    await settle();
    expect(w[1].units.map(seqs)).toEqual([[0, 1, 2]]);
    expect(a.opens.map((o) => o.context)).toEqual([{ after: 0 }, { after: 0 }]);
    arrive(a, u, [3, 4]);
    cut(a, u);
    await answerUnit(w[1]);
    expect(w[1].units.map(seqs)).toEqual([[0, 1, 2, 3, 4]]);
    expect(answered(a)).toEqual([[0, 5, 'result']]);
    expect(budget.used).toBe(0);
  });

  it('retries a complete unit whose worker died once another worker has room', async () => {
    const { feed, pool, w } = setup(2);
    const [a, b, c] = [owner('a'), owner('b'), owner('c')];
    feed(a, 1);
    feed(b, 1);
    feed(c, 1);
    expect(w.map(sessionsAt)).toEqual([['a'], ['b']]);
    w[0].crash();
    await settle();
    // w0 is gone and w1 holds a frame: the retry waits.
    expect(pool.pendingCount).toBe(1);
    expect(a.opens).toHaveLength(1);
    await drain(w);
    for (const s of [a, b, c]) expect(answered(s)).toEqual([[0, 5, 'result']]);
    expect(a.opens).toHaveLength(2);
    expect(seqs(w[1].units.find((u) => u.meta.session === 'a')!)).toEqual([0, 1, 2, 3, 4]);
  });

  it('answers a unit whose second worker died too as failed, once it is complete, with all its frames', async () => {
    const { budget, scheduler, openUnit, arrive, cut, pool, w } = setup(2);
    for (const x of w) x.frameMsAvg = AHEAD_4;
    const a = owner('a');
    const u = openUnit(a);
    arrive(a, u, [0, 1]);
    w[0].crash();
    await settle();
    expect(w[1].units.map(seqs)).toEqual([[0, 1]]);
    w[1].crash();
    await settle();
    pool.ready(w[0]);
    // Failed for good, but not complete: not answered yet, and its next frames go nowhere.
    expect(a.answers).toEqual([]);
    arrive(a, u, [2, 3, 4]);
    expect([w[0].units.length, w[1].units.length]).toEqual([1, 1]);
    expect(scheduler.queuedUnits()).toBe(0);
    cut(a, u);
    expect(answered(a)).toEqual([[0, 5, 'failed']]);
    const { answer } = a.answers[0];
    expect(answer.kind === 'failed' && answer.error instanceof WorkerRequestError && answer.error.failure).toBe('crash');
    expect(budget.used).toBe(0);
    // The session's next unit goes on, from the context before the failed one.
    const next = openUnit(a, 5);
    arrive(a, next, [5]);
    cut(a, next);
    await answerUnit(w[0]);
    expect(answered(a)).toEqual([
      [0, 5, 'failed'],
      [5, 1, 'result'],
    ]);
    expect(a.opens.map((o) => o.context)).toEqual([{ after: 0 }, { after: 0 }, { after: 1 }]);
    expect(budget.used).toBe(0);
  });

  it('answers a unit whose frame timed out or failed in the model as failed, without retry, once it is complete', async () => {
    for (const failure of ['timeout', 'model'] as const) {
      const { budget, scheduler, openUnit, arrive, cut, w } = setup(2);
      for (const x of w) x.frameMsAvg = AHEAD_4;
      const a = owner('a');
      const u = openUnit(a);
      arrive(a, u, [0, 1]);
      w[0].fail(failure);
      await settle();
      w[0].step();
      await settle();
      expect([a.answers.length, w[1].units.length, scheduler.heldAt(w[0])]).toEqual([0, 0, 0]);
      arrive(a, u, [2, 3, 4]);
      expect(w[0].units.map(seqs)).toEqual([[0, 1]]);
      expect(w[1].units).toEqual([]);
      cut(a, u);
      expect(answered(a)).toEqual([[0, 5, 'failed']]);
      const { answer } = a.answers[0];
      expect(answer.kind === 'failed' && answer.error instanceof WorkerRequestError && answer.error.failure).toBe(failure);
      // The close never went: the unit was lost at the worker already.
      expect(w[0].units[0].closesWindow).toBeNull();
      expect(budget.used).toBe(0);
    }
  });

  it('answers a unit whose close failed in the model as failed, without retry', async () => {
    const { budget, feed, pool, w } = setup(2);
    const a = owner('a');
    feed(a, 1);
    for (let i = 0; i < 5; i++) {
      w[0].step();
      await settle();
    }
    expect(w[0].ops.map((o) => o.kind)).toEqual(['close']);
    w[0].fail('model');
    await settle();
    expect(answered(a)).toEqual([[0, 5, 'failed']]);
    expect([pool.pendingCount, w[1].units.length, budget.used]).toEqual([0, 0, 0]);
  });

  it('retries every unit a dead worker held, each for its own session', async () => {
    const { budget, feed, pool, w } = setup(2);
    w[0].frameMsAvg = AHEAD_4;
    w[1].frameMsAvg = AHEAD_4;
    w[0].ready = false;
    w[1].ready = false;
    const sessions = [owner('a'), owner('b'), owner('c')];
    for (const s of sessions) feed(s, 1);
    pool.ready(w[0]);
    expect(w[0].units.map((u) => [u.meta.session, seqs(u)])).toEqual([
      ['a', [0, 1]],
      ['b', [0]],
      ['c', [0]],
    ]);
    w[0].crash();
    await settle();
    pool.ready(w[1]);
    // Each from its first frame, tagged as if the lost attempt never was: in the order they first went.
    expect(w[1].units.map((u) => [u.meta.session, seqs(u)])).toEqual([
      ['a', [0, 1]],
      ['b', [0]],
      ['c', [0]],
    ]);
    await drain(w);
    for (const s of sessions) expect(answered(s)).toEqual([[0, 5, 'result']]);
    expect(w[1].units.map(seqs)).toEqual([0, 1, 2].map(() => [0, 1, 2, 3, 4]));
    expect(budget.used).toBe(0);
  });
});

describe('shedding', () => {
  it('sheds each frame that waited past maxUnitAgeMs, and keeps one that waited exactly that', async () => {
    const { budget, clock, scheduler, w } = setup(1, { maxUnitAgeMs: 3000 });
    const a = owner('a');
    const u = unit(budget, a, { seqFrom: 0, frames: 5, createdAt: 1000 });
    u.frames.forEach((f, i) => (f.receivedAt = 1000 + 200 * i));
    clock.t = 1800;
    scheduler.enqueue(a, u);
    // Frame 0 is at the worker; frame 1 will have waited 3200 ms, frame 2 exactly 3000.
    clock.t = 4400;
    expect(await drain(w)).toEqual(['a0', 'a2', 'a3', 'a4', 'a:close']);
    expect(a.shedFrames).toEqual(new Map([[0, 1]]));
    expect(answered(a)).toEqual([[0, 4, 'result']]);
    expect([u.counts.shed, scheduler.shedTotal, budget.used]).toEqual([1, 1, 0]);
  });

  it('answers a unit whose frames all went stale and that closes no window as skipped, without a worker', async () => {
    const { budget, clock, feed, w } = setup(1, { maxUnitAgeMs: 3000 });
    const a = owner('a');
    feed(a, 3);
    clock.advance(3001);
    await answerUnit(w[0]);
    expect(a.shedFrames).toEqual(
      new Map([
        [0, 4],
        [5, 5],
        [10, 5],
      ]),
    );
    expect(answered(a)).toEqual([
      [0, 1, 'result'],
      [5, 0, 'skipped'],
      [10, 0, 'skipped'],
    ]);
    expect([w[0].units.length, a.opens.length, budget.used]).toEqual([1, 1, 0]);
  });

  it("answers a next unit the queue limit emptied as soon as the unit before it is answered, while others' frames wait", async () => {
    const { clock, feed, w } = setup(1, { sessionQueueUnits: 1 });
    const a = owner('a');
    const b = owner('b');
    feed(a, 1);
    feed(b, 3);
    clock.advance(1000);
    // a's second unit is shed whole when its third comes: it closes no window, so it needs no worker.
    feed(a, 2, 5);
    expect(a.shedFrames.get(5)).toBe(5);
    for (;;) {
      await settle();
      const op = w[0].step();
      if (op.kind === 'close' && op.unit.meta.session === 'a') break;
    }
    await settle();
    // Answered with the unit before it, though b's frames, due before it, still wait for the worker: a's
    // third unit must not wait behind them for the empty one's turn.
    expect(answered(a)).toEqual([
      [0, 5, 'result'],
      [5, 0, 'skipped'],
    ]);
    expect(w[0].ops.length).toBe(1);
    expect(b.answers.length).toBeLessThan(3);
  });

  it('sends a stale unit that closes a window to a worker empty, so the window closes', async () => {
    const { clock, feed, w } = setup(1, { maxUnitAgeMs: 3000 });
    const a = owner('a');
    feed(a, 1);
    feed(a, 1, 5, { closesWindow: true });
    clock.advance(3001);
    await answerUnit(w[0]);
    expect(w[0].units.map((u) => [seqs(u), u.closesWindow])).toEqual([
      [[0], false],
      [[], true],
    ]);
    expect(w[0].ops.map((o) => o.kind)).toEqual(['close']);
    expect(a.shedFrames.get(5)).toBe(5);
    await answerUnit(w[0]);
    expect(answered(a)).toEqual([
      [0, 1, 'result'],
      [5, 0, 'result'],
    ]);
  });

  it('sends an empty unit that closes a window to a worker (open and close), and answers one that closes none without one', async () => {
    const { budget, scheduler, w } = setup(1);
    const a = owner('a');
    const b = owner('b');
    scheduler.enqueue(a, unit(budget, a, { seqFrom: 0, frames: 0, closesWindow: true, createdAt: 1000 }));
    scheduler.enqueue(b, unit(budget, b, { seqFrom: 0, frames: 0, createdAt: 1000 }));
    expect(answered(b)).toEqual([[0, 0, 'skipped']]);
    expect(b.opens).toEqual([]);
    expect(w[0].units.map((u) => [u.meta.session, seqs(u), u.closesWindow])).toEqual([['a', [], true]]);
    expect(w[0].ops.map((o) => o.kind)).toEqual(['close']);
    await answerUnit(w[0]);
    expect(answered(a)).toEqual([[0, 0, 'result']]);
  });

  it("sheds a session's oldest waiting units past its queue limit, only as many as it is over", async () => {
    const { budget, feed, w } = setup(1, { sessionQueueUnits: 2 });
    const a = owner('a');
    // seq 0 is opened at the worker, 5 and 10 wait, 15 puts the session one unit over its limit.
    feed(a, 4);
    expect(a.shedFrames).toEqual(new Map([[5, 5]]));
    await drain(w);
    expect(answered(a)).toEqual([
      [0, 5, 'result'],
      [5, 0, 'skipped'],
      [10, 5, 'result'],
      [15, 5, 'result'],
    ]);
    expect(budget.used).toBe(0);
  });

  it("sheds a session's oldest waiting units past its queue bytes, counting the frames not sent yet", () => {
    const { feed, w } = setup(1, { sessionQueueBytes: 12_000 });
    w[0].frameMsAvg = AHEAD_4;
    const a = owner('a');
    // 1000-byte frames: 4 of the first unit are at the worker; its fifth and two more units are 11 000 bytes, a third 16 000.
    feed(a, 4);
    expect(a.shedFrames).toEqual(new Map([[5, 5]]));
  });

  it('makes room in a full budget by shedding the oldest unit of the session furthest above its fair share', () => {
    // 40 000 bytes for 2 sessions: 20 000 each.
    const { budget, scheduler, feed } = setup(1, {}, 40_000);
    const heavy = owner('heavy');
    const light = owner('light');
    feed(light, 1); // open at the worker: 5 000 held
    feed(heavy, 7); // all waiting: 35 000 held
    expect(budget.hasRoom(1000)).toBe(false);
    expect(scheduler.shedFor(1000, light, 2)).toBe(true);
    // One unit (5 000 bytes) was enough: heavy's oldest.
    expect(heavy.shedFrames).toEqual(new Map([[0, 5]]));
    expect(light.shedFrames.size).toBe(0);
    expect(budget.hasRoom(1000)).toBe(true);
    expect(scheduler.shedTotal).toBe(5);
  });

  it('never sheds the unsent frames of a unit open at a worker to make room', () => {
    // The open unit's 4 frames not sent yet are older than the next unit's, yet the next unit goes.
    const two = setup(1, {}, 10_000);
    const heavy = owner('heavy');
    two.feed(heavy, 2);
    expect(two.scheduler.shedFor(1000, owner('new'), 2)).toBe(true);
    expect(heavy.shedFrames).toEqual(new Map([[5, 5]]));
    // With only the open unit's frames waiting, nothing can be shed.
    const one = setup(1, {}, 5000);
    const alone = owner('alone');
    one.feed(alone, 1);
    expect(one.scheduler.shedFor(1000, owner('new'), 2)).toBe(false);
    expect([alone.shedFrames.size, one.budget.used]).toEqual([0, 5000]);
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

  it('refuses to make room for a session above its share, even from its own waiting units', () => {
    // 30 000 bytes for 2 sessions: 15 000 each; heavy holds 20 000.
    const { budget, scheduler, feed } = setup(1, {}, 30_000);
    const heavy = owner('heavy');
    feed(heavy, 4);
    feed(owner('other'), 2);
    expect(budget.hasRoom(1)).toBe(false);
    expect(scheduler.shedFor(1000, heavy, 2)).toBe(false);
    expect([heavy.shedFrames.size, scheduler.shedTotal]).toEqual([0, 0]);
  });
});

describe('a session that goes away', () => {
  it('has its unsent frames dropped and freed; its unit open at a worker is closed with what it was sent, and answered', async () => {
    const { budget, scheduler, feed, openUnit, arrive, pool, w } = setup(1);
    w[0].frameMsAvg = AHEAD_2;
    const a = owner('a');
    const b = owner('b');
    const u = openUnit(a);
    arrive(a, u, [0, 1, 2]);
    feed(b, 1);
    expect(w[0].units.map(seqs)).toEqual([[0, 1]]);
    expect(scheduler.remove(a)).toBe(1);
    expect(budget.used).toBe(2 * 1000 + 5 * 1000); // a's two frames at the worker, b's waiting
    expect(w[0].units.map((x) => [seqs(x), x.closesWindow])).toEqual([[[0, 1], false]]);
    expect(scheduler.queuedUnits()).toBe(1);
    await answerUnit(w[0]);
    expect(answered(a)).toEqual([[0, 2, 'result']]);
    expect(sessionsAt(w[0])).toEqual(['a', 'b']);
    await drain(w);
    expect(answered(b)).toEqual([[0, 5, 'result']]);
    expect([pool.pendingCount, budget.used, scheduler.idle(a)]).toEqual([0, 0, true]);
  });

  it('has its queued units dropped without an answer', async () => {
    const { budget, scheduler, feed, w } = setup(1);
    const a = owner('a');
    feed(a, 3);
    // Unit 0 has frame 0 at the worker: its 4 others and units 5 and 10 are dropped.
    expect(scheduler.remove(a)).toBe(14);
    expect(budget.used).toBe(1000);
    await drain(w);
    expect(answered(a)).toEqual([[0, 1, 'result']]);
    expect([w[0].units.length, budget.used]).toEqual([1, 0]);
  });

  it('gets no retry for a unit at a worker that died after it went away', async () => {
    const { budget, scheduler, feed, pool, w } = setup(2);
    const a = owner('a');
    feed(a, 1);
    scheduler.remove(a);
    w[0].crash();
    await settle();
    expect([pool.pendingCount, w[1].units.length]).toEqual([0, 0]);
    expect(answered(a)).toEqual([[0, 1, 'failed']]);
    expect(budget.used).toBe(0);
  });
});

describe('what the load monitor reads', () => {
  it('counts the units and the oldest wait of frames not sent yet, on the injected clock', async () => {
    const { clock, scheduler, openUnit, arrive, feed, w } = setup(1, { maxUnitAgeMs: 60_000 });
    w[0].frameMsAvg = AHEAD_2;
    const a = owner('a');
    const b = owner('b');
    const u = openUnit(a);
    arrive(a, u, [0, 1]);
    expect([scheduler.queuedUnits(), scheduler.oldestWaitMs()]).toEqual([0, 0]);
    clock.advance(500);
    arrive(a, u, [2, 3]);
    clock.advance(500);
    // Frames 0 and 1 are at the worker. Frames 2 and 3 arrived at 1500 and are due when seq 4 is
    // expected, at 1900 and 1700: frame 3 is the furthest behind, by 300 ms.
    expect([scheduler.queuedUnits(), scheduler.oldestWaitMs()]).toEqual([1, 300]);
    feed(b, 1);
    expect([scheduler.queuedUnits(), scheduler.oldestWaitMs()]).toEqual([2, 300]);
    w[0].step();
    w[0].step();
    await settle();
    // a's frames 2 and 3 (tags 1500 and 1700, a frame period apart) are due at 1900, b's at 2000.
    expect(seqs(w[0].units[0])).toEqual([0, 1, 2, 3]);
    // a's unit is open with nothing left to send; b's frames waited 0 ms.
    expect([scheduler.queuedUnits(), scheduler.oldestWaitMs()]).toEqual([1, 0]);
    clock.advance(100);
    expect(scheduler.oldestWaitMs()).toBe(100);
    expect(scheduler.idle(a)).toBe(false);
    expect(scheduler.idle(owner('never-seen'))).toBe(true);
  });

  it('counts frames shed and analysed', async () => {
    const { clock, scheduler, feed, w } = setup(1, { maxUnitAgeMs: 3000 });
    const a = owner('a');
    feed(a, 2);
    await answerUnit(w[0], { undecodable: [1] });
    expect(scheduler.analysedTotal).toBe(4);
    clock.advance(3001);
    await drain(w);
    expect([scheduler.shedTotal, scheduler.analysedTotal]).toEqual([4, 5]);
  });

  it('stops sending frames once closed', () => {
    const { scheduler, feed, pool } = setup(1);
    scheduler.close();
    feed(owner('a'), 1);
    expect(pool.pendingCount).toBe(0);
  });
});

describe('random traces', () => {
  /**
   * Sessions stream frames into units of 5 while workers work, fail and crash, sessions go away and the
   * clock moves; then every open unit is cut and the workers finish. Every unit of a session still there
   * must then be answered, once and in order, with each of its frames either in the answer or counted
   * shed, every byte freed, and nothing left queued: a session the scheduler lost track of would stay
   * queued forever.
   */
  for (const [seed, sessions, maxUnitAgeMs] of [
    [1, 3, 3000],
    [2, 20, 3000],
    [3, 40, 400],
    [4, 80, 1000],
    [5, 80, 1e9],
  ] as const) {
    it(`seed ${seed}: ${sessions} sessions, frames stale after ${maxUnitAgeMs} ms`, async () => {
      const { scheduler, budget, clock, openUnit, arrive, cut, pool, w } = setup(2, { sessionQueueUnits: 3, maxUnitAgeMs });
      w[0].frameMsAvg = AHEAD_2;
      w[1].frameMsAvg = AHEAD_4;
      const rnd = seededRandom(seed);
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
      interface Stream {
        o: RecordingOwner;
        open: Unit | null;
        next: number;
        /** Frames added to each unit queued, by its seqFrom. */
        units: Map<number, number>;
      }
      const newStream = (i: number): Stream => ({ o: owner(`s${i}`), open: null, next: 0, units: new Map() });
      let streams = Array.from({ length: sessions }, (_, i) => newStream(i));
      const gone: Stream[] = [];
      for (let step = 0; step < 3000; step++) {
        const r = rnd();
        if (r < 0.3) {
          clock.advance(Math.floor(rnd() * 60));
        } else if (r < 0.65) {
          const s = pick(streams);
          s.open ??= openUnit(s.o, s.next);
          s.units.set(s.open.seqFrom, (s.units.get(s.open.seqFrom) ?? 0) + 1);
          arrive(s.o, s.open, [s.next++]);
          if (s.next % 5 === 0) {
            cut(s.o, s.open);
            s.open = null;
          }
        } else if (r < 0.97) {
          const worker = pick(w);
          if (worker.ops.length > 0) {
            if (rnd() < 0.02) worker.fail('model');
            else worker.step();
          }
          await settle();
        } else if (r < 0.975) {
          const worker = pick(w);
          worker.crash();
          await settle();
          pool.ready(worker);
        } else if (r < 0.98) {
          const i = Math.floor(rnd() * streams.length);
          scheduler.remove(streams[i].o);
          gone.push(streams[i]);
          streams = streams.map((s, k) => (k === i ? newStream(sessions + gone.length) : s));
        }
      }
      for (const s of streams) if (s.open) cut(s.o, s.open);
      await drain(w);

      expect(streams.reduce((n, s) => n + s.o.answers.length, 0)).toBeGreaterThan(sessions);
      for (const s of streams) {
        expect(s.o.answers.map((a) => a.seqFrom), s.o.id).toEqual([...s.units.keys()]);
        for (const a of s.o.answers) expect(a.frames + (s.o.shedFrames.get(a.seqFrom) ?? 0), `${s.o.id} ${a.seqFrom}`).toBe(s.units.get(a.seqFrom));
        expect(scheduler.idle(s.o), s.o.id).toBe(true);
      }
      for (const s of gone) expect(s.o.answers.map((a) => a.seqFrom)).toEqual([...s.units.keys()].slice(0, s.o.answers.length));
      expect(budget.used).toBe(0);
      expect(pool.pendingCount).toBe(0);
    });
  }
});
