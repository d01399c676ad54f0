import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import { FrameBudget } from '../src/handler/frame-budget.js';
import { encodeFrame, FORMAT_JPEG } from '../src/handler/frame-header.js';
import { Scheduler } from '../src/handler/scheduler.js';
import { Pipelines, type PipelineCheckpoint, type SessionPipeline } from '../src/handler/session-pipeline.js';
import { CLOSE_CODES } from '../src/protocol/close-codes.js';
import {
  serverMessageSchema,
  summaryMessage,
  type ResultMessage,
  type ServerErrorMessage,
  type ServerMessage,
} from '../src/protocol/server-messages.js';
import { createLogger } from '../src/utils/logger.js';
import { frame } from './helpers/frames.js';
import { answerUnit, fakeClock, FakeWorkers, settle, type FakeUnit, type FakeWorker } from './helpers/fake-workers.js';

const JPEG = frame('face.jpg');
const CAPTURE_BASE = Date.now();

interface Out {
  sent: ServerMessage[];
  closed: Array<[number, string]>;
  settled: number;
}

const opened: Pipelines[] = [];
afterEach(() => {
  for (const p of opened.splice(0)) p.close();
});

/** Pipelines over a real scheduler, frame budget and config, with fake workers and a fake clock. */
function setup(env: Record<string, string> = {}, workers = 1, sessions = 1) {
  const config = loadConfig({ FPS: '5', BATCH_FRAMES: '5', WINDOW_FRAMES: '10', RATE_BURST_FRAMES: '1000', ...env });
  const pool = new FakeWorkers(workers);
  const budget = new FrameBudget(config.FRAME_BUDGET_BYTES);
  const clock = fakeClock();
  const scheduler = new Scheduler(
    pool,
    budget,
    {
      sessionQueueUnits: config.SESSION_QUEUE_UNITS,
      sessionQueueBytes: config.SESSION_QUEUE_BYTES,
      maxUnitAgeMs: config.MAX_UNIT_AGE_MS,
      framePeriodMs: 1000 / config.FPS,
      batchFrames: config.BATCH_FRAMES,
    },
    { now: clock.now },
  );
  const pipelines = new Pipelines({ config, budget, scheduler, logger: createLogger('silent'), sessions: () => sessions, now: clock.now });
  opened.push(pipelines);
  const open = (id: string, restored?: PipelineCheckpoint) => {
    const out: Out = { sent: [], closed: [], settled: 0 };
    const p = pipelines.open(id, { send: (m) => out.sent.push(m), close: (code, reason) => out.closed.push([code, reason]), settled: () => out.settled++ }, restored);
    return { p, out };
  };
  return { config, pool, budget, clock, scheduler, open, w: pool.list };
}

const send = (p: SessionPipeline, seqs: Iterable<number>, image = JPEG) => {
  for (const seq of seqs) p.receive(encodeFrame({ format: FORMAT_JPEG, seq, captureTs: CAPTURE_BASE + seq * 200 }, image));
};
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const seqs = (u: FakeUnit) => u.frames.map((f) => f.seq);
const results = (out: Out, kind?: 'batch' | 'window') => out.sent.filter((m): m is ResultMessage => m.type === 'result' && (!kind || m.kind === kind));
const errors = (out: Out) => out.sent.filter((m): m is ServerErrorMessage => m.type === 'error');
/** The pipeline's figures as the session's summary gives them. */
const summary = (p: SessionPipeline) => summaryMessage({ sessionId: p.sessionId, userId: 'u', durationMs: 0, ...p.figures() });
/** Every frame received ends analysed, rejected or dropped. */
const accountedFor = (p: SessionPipeline) => {
  const f = summary(p);
  return f.framesAnalyzed + f.framesRejected + f.framesDropped === f.framesReceived;
};

/** Work every worker until none holds anything. */
async function drain(workers: readonly FakeWorker[]): Promise<void> {
  for (;;) {
    await settle();
    const w = workers.find((x) => x.ops.length > 0);
    if (!w) return;
    w.step();
  }
}

describe('a session pipeline', () => {
  it('turns frames into batch and window results, in seq order, each unit carrying the context the previous returned', async () => {
    const { budget, open, w } = setup();
    const { p, out } = open('a');
    send(p, range(0, 9));
    // The first unit is open at the worker; the second waits for its context.
    expect(w[0].units.map((u) => u.meta.context)).toEqual([null]);
    await answerUnit(w[0]);
    expect(w[0].units.map(seqs)).toEqual([range(0, 4), [5]]);
    expect(w[0].units[1].meta.context).toEqual({ lastSeq: 4, previous: null });
    await answerUnit(w[0]);
    expect(w[0].units.map((u) => [seqs(u), u.closesWindow])).toEqual([
      [range(0, 4), false],
      [range(5, 9), true],
    ]);
    expect(results(out).map((r) => [r.kind, r.resultId, r.seqFrom, r.seqTo, r.framesAnalyzed])).toEqual([
      ['batch', 1, 0, 4, 5],
      ['batch', 2, 5, 9, 5],
      ['window', 3, 0, 9, 10],
    ]);
    expect(out.settled).toBe(2);
    expect(summary(p)).toMatchObject({ framesReceived: 10, framesAnalyzed: 10, framesDropped: 0, results: 3, meanScore: 80 });
    // What it sent, and the summary built from its figures, are messages of the protocol.
    for (const m of [...out.sent, summary(p)]) expect(serverMessageSchema.safeParse(m).error).toBeUndefined();
    expect([p.idle, p.nextResultId, budget.used]).toEqual([true, 4, 0]);
    expect(p.checkpoint()).toMatchObject({ expectedSeq: 10, context: { lastSeq: 9, previous: { lastSeq: 4, previous: null } }, nextResultId: 4 });
  });

  it('sends each frame to a worker as it arrives, in seq order, and closes its unit once it is cut', async () => {
    const { open, w } = setup();
    w[0].frameMsAvg = 0.5; // 4 frames ahead
    const { p, out } = open('a');
    send(p, [0, 1]);
    expect(w[0].units.map((u) => [seqs(u), u.closesWindow])).toEqual([[[0, 1], null]]);
    send(p, [3]); // waits for 2
    expect(seqs(w[0].units[0])).toEqual([0, 1]);
    send(p, [2]);
    expect(seqs(w[0].units[0])).toEqual([0, 1, 2, 3]);
    send(p, [4]);
    // The unit is cut, but its last frame waits for room at the worker: no close yet.
    expect([seqs(w[0].units[0]), w[0].units[0].closesWindow, p.idle]).toEqual([[0, 1, 2, 3], null, false]);
    await answerUnit(w[0]);
    expect(w[0].units.map((u) => [seqs(u), u.closesWindow])).toEqual([[[0, 1, 2, 3, 4], false]]);
    expect(results(out).map((r) => [r.kind, r.seqFrom, r.framesAnalyzed])).toEqual([['batch', 0, 5]]);
    expect(p.idle).toBe(true);
  });

  it('keeps each session\'s results in order when sessions share a worker fed ahead', async () => {
    const { open, w } = setup({ WINDOW_FRAMES: '50' });
    w[0].frameMsAvg = 0.5; // 4 frames ahead
    const a = open('a');
    const b = open('b');
    for (let i = 0; i < 4; i++) {
      send(a.p, range(i * 5, i * 5 + 4));
      send(b.p, range(i * 5, i * 5 + 4));
    }
    // a's first frames filled the worker's look-ahead; one unit of each session at a time.
    expect([w[0].framesPending, w[0].units.map((u) => u.meta.session)]).toEqual([4, ['a']]);
    await drain(w);
    expect(w[0].units.map((u) => `${u.meta.session}${u.frames[0].seq}`)).toEqual(['a0', 'b0', 'a5', 'b5', 'a10', 'b10', 'a15', 'b15']);
    for (const { out } of [a, b]) {
      expect(results(out).map((r) => [r.resultId, r.seqFrom])).toEqual([
        [1, 0],
        [2, 5],
        [3, 10],
        [4, 15],
      ]);
    }
  });

  it('retries a unit whose worker died on another worker: nothing is lost', async () => {
    const { open, w } = setup({}, 2);
    const { p, out } = open('a');
    send(p, range(0, 4));
    w[0].crash();
    await settle();
    await answerUnit(w[1]);
    expect(w[1].units.map(seqs)).toEqual([[0, 1, 2, 3, 4]]);
    expect(results(out, 'batch').map((r) => r.framesAnalyzed)).toEqual([5]);
    expect(errors(out)).toEqual([]);
    expect(summary(p)).toMatchObject({ framesReceived: 5, framesAnalyzed: 5, dropped: {} });
  });

  it('reports a unit that lost two workers as model_error, with an empty batch, and goes on', async () => {
    const { open, pool, w } = setup({}, 2);
    const { p, out } = open('a');
    send(p, range(0, 9));
    w[0].crash();
    await settle();
    w[1].crash();
    await settle();
    pool.ready(w[0]);
    await answerUnit(w[0]);
    expect(errors(out)).toEqual([expect.objectContaining({ code: 'model_error', seq: 0 })]);
    expect(results(out).map((r) => [r.kind, r.seqFrom, r.framesAnalyzed, r.state])).toEqual([
      ['batch', 0, 0, 'unknown'],
      ['batch', 5, 5, 'focused'],
      ['window', 0, 5, 'focused'],
    ]);
    expect(results(out)[0].signals).toEqual({ error: 'model_error' });
    // The retried unit went out with no context yet; the next one with none either (the failed unit returned none).
    expect(w[0].units.at(-1)?.meta.context).toBeNull();
    expect(summary(p)).toMatchObject({ framesReceived: 10, framesAnalyzed: 5, dropped: { model_error: 5 } });
    expect(accountedFor(p)).toBe(true);
  });

  it('counts a frame the model could not decode as image_undecodable, in the batch and the window it closes', async () => {
    const { open, w } = setup();
    const { p, out } = open('a');
    send(p, range(0, 9));
    await answerUnit(w[0]);
    await answerUnit(w[0], { undecodable: [2] });
    expect(errors(out)).toEqual([expect.objectContaining({ code: 'image_undecodable', seq: 7 })]);
    expect(results(out).map((r) => [r.kind, r.framesAnalyzed, r.counts.rejected])).toEqual([
      ['batch', 5, 0],
      ['batch', 4, 1],
      ['window', 9, 1],
    ]);
    expect(summary(p)).toMatchObject({ framesAnalyzed: 9, framesRejected: 1, rejected: { image_undecodable: 1 } });
    expect(accountedFor(p)).toBe(true);
  });

  it('refuses a broken JPEG with an error naming its seq; its slot stays in the batch, not lost', async () => {
    const { open, w } = setup();
    const { p, out } = open('a');
    send(p, [0, 1]);
    send(p, [2], Buffer.from('not a jpeg at all'));
    send(p, [3, 4]);
    await answerUnit(w[0]);
    expect(w[0].units.map(seqs)).toEqual([[0, 1, 3, 4]]);
    expect(errors(out)).toEqual([expect.objectContaining({ code: 'jpeg_invalid', seq: 2 })]);
    const [batch] = results(out, 'batch');
    expect([batch.framesAnalyzed, batch.counts.rejected]).toEqual([4, 1]);
    expect(summary(p)).toMatchObject({ framesReceived: 5, framesRejected: 1, framesLost: 0 });
  });
});

describe('shedding through the pipeline', () => {
  it('sheds frames that waited past MAX_UNIT_AGE_MS: batch results of units left empty still come, without a worker', async () => {
    const { clock, open, w } = setup({ WINDOW_FRAMES: '50', MAX_UNIT_AGE_MS: '1000' });
    const { p, out } = open('a');
    send(p, range(0, 14));
    clock.advance(1001);
    // Frame 0 had gone to the worker; the others went stale waiting.
    await answerUnit(w[0]);
    expect(results(out, 'batch').map((r) => [r.seqFrom, r.framesAnalyzed, r.counts.shed])).toEqual([
      [0, 1, 4],
      [5, 0, 5],
      [10, 0, 5],
    ]);
    expect(w[0].units.map(seqs)).toEqual([[0]]);
    expect(out.settled).toBe(3);
    expect(summary(p)).toMatchObject({ framesAnalyzed: 1, dropped: { shed: 14 } });
    expect([p.idle, accountedFor(p)]).toEqual([true, true]);
  });

  it('holds a session to its queue limit by shedding its oldest waiting unit', async () => {
    const { open, w } = setup({ WINDOW_FRAMES: '50', SESSION_QUEUE_UNITS: '2' });
    const { p, out } = open('a');
    send(p, range(0, 19));
    await drain(w);
    expect(results(out, 'batch').map((r) => [r.seqFrom, r.framesAnalyzed])).toEqual([
      [0, 5],
      [5, 0],
      [10, 5],
      [15, 5],
    ]);
    expect(summary(p).dropped).toEqual({ shed: 5 });
  });

  it('gives a session its share of a full frame budget by shedding the oldest unit of the one above its share', async () => {
    // 1 MiB for two sessions: about 30 face frames fit.
    const { budget, open, w } = setup({ FRAME_BUDGET_BYTES: String(1024 * 1024), WINDOW_FRAMES: '50', SESSION_QUEUE_UNITS: '100', SESSION_QUEUE_BYTES: String(1024 ** 3) }, 1, 2);
    const greedy = open('greedy');
    const polite = open('polite');
    const fit = Math.floor(budget.limitBytes / JPEG.length);
    expect(fit).toBeLessThan(40);
    send(greedy.p, range(0, 39));
    // The frames past what fits found the budget full with the sender far above its share: refused.
    expect(summary(greedy.p).dropped).toEqual({ shed: 40 - fit });
    expect(budget.hasRoom(JPEG.length)).toBe(false);
    send(polite.p, [0]);
    expect(summary(polite.p).dropped).toEqual({});
    // Room was made from the greedy session's oldest waiting unit (5 frames), not the one open at the worker.
    expect(summary(greedy.p).dropped).toEqual({ shed: 40 - fit + 5 });
    expect(budget.peak).toBeLessThanOrEqual(budget.limitBytes);
    expect(await answerUnit(w[0])).toMatchObject({ meta: { session: 'greedy' }, frames: range(0, 4).map((seq) => ({ seq })) });
  });
});

describe('a session that closes', () => {
  it('drops what it holds as session_closed; its unit at a worker is answered, and every frame is counted once', async () => {
    const { budget, open, w } = setup({ WINDOW_FRAMES: '50' });
    const { p, out } = open('a');
    // 0-4 open at the worker with 0 and 1 sent, 5-19 queued, 20-21 in the open batch, 23 waiting for 22.
    w[0].frameMsAvg = 3;
    send(p, [...range(0, 21), 23]);
    expect(w[0].units.map(seqs)).toEqual([[0, 1]]);
    expect(p.idle).toBe(false);
    p.close();
    expect(summary(p).dropped).toEqual({ session_closed: 21 });
    expect(budget.used).toBe(2 * JPEG.length);
    // The unit at the worker is closed with what it was sent.
    expect(w[0].units.map((u) => u.closesWindow)).toEqual([false]);
    await answerUnit(w[0]);
    expect(results(out, 'batch').map((r) => [r.seqFrom, r.framesAnalyzed])).toEqual([[0, 2]]);
    expect(w[0].units.map(seqs)).toEqual([[0, 1]]);
    expect(summary(p)).toMatchObject({ framesReceived: 23, framesAnalyzed: 2, framesDropped: 21 });
    expect([p.idle, budget.used, accountedFor(p)]).toEqual([true, 0, true]);
    // Frames after the close are not taken.
    send(p, [24]);
    expect(summary(p).framesReceived).toBe(23);
  });

  it('at bye, hands on what it holds and closes the window with the partial batch', async () => {
    const { open, w } = setup();
    const { p, out } = open('a');
    send(p, range(0, 6));
    await answerUnit(w[0]);
    await settle();
    // The open unit is at the worker already (a frame ahead of its work); its close waits for the cut.
    expect(w[0].units.map((u) => [seqs(u), u.closesWindow])).toEqual([
      [range(0, 4), false],
      [[5], null],
    ]);
    p.handOn(true);
    await answerUnit(w[0]);
    expect([seqs(w[0].units[1]), w[0].units[1].closesWindow]).toEqual([[5, 6], true]);
    expect(results(out).map((r) => [r.kind, r.seqFrom, r.seqTo, r.framesAnalyzed])).toEqual([
      ['batch', 0, 4, 5],
      ['batch', 5, 6, 2],
      ['window', 0, 6, 7],
    ]);
    expect(p.idle).toBe(true);
  });
});

describe('rate limit', () => {
  it('drops frames above the rate with one notice, and closes a client that keeps on', () => {
    const { open } = setup({ RATE_BURST_FRAMES: '2', RATE_ABUSE_FRAMES: '3' });
    const { p, out } = open('a');
    send(p, range(0, 4));
    expect(out.sent.filter((m) => m.type === 'notice')).toEqual([expect.objectContaining({ code: 'rate_limited', fps: 5 })]);
    expect(summary(p).dropped).toEqual({ rate_limited: 3 });
    expect(out.closed).toEqual([]);
    send(p, [5]);
    expect(errors(out)).toEqual([expect.objectContaining({ code: 'rate_limited', fatal: true })]);
    expect(out.closed).toEqual([[CLOSE_CODES.policy_violation.code, 'rate_limited']]);
  });

  it('follows a throttle', () => {
    const { open } = setup();
    const { p } = open('a');
    expect([p.throttle(2), p.fps, p.throttle(2)]).toEqual([true, 2, false]);
  });
});

describe('checkpoint', () => {
  it('lets a pipeline go on where another left: result ids, context, seq', async () => {
    const first = setup();
    const a = first.open('a');
    send(a.p, range(0, 4));
    await answerUnit(first.w[0]);
    const checkpoint = a.p.checkpoint();
    expect(checkpoint).toMatchObject({ expectedSeq: 5, nextResultId: 2, outcomes: { received: 5, analysed: 5 } });

    const second = setup();
    const b = second.open('a', checkpoint);
    expect(b.p.nextResultId).toBe(2);
    send(b.p, range(5, 9));
    expect(second.w[0].units[0].meta.context).toEqual({ lastSeq: 4, previous: null });
    await answerUnit(second.w[0]);
    expect(results(b.out).map((r) => [r.kind, r.resultId, r.seqFrom, r.framesAnalyzed])).toEqual([
      ['batch', 2, 5, 5],
      ['window', 3, 0, 10],
    ]);
    expect(summary(b.p)).toMatchObject({ framesReceived: 10, framesAnalyzed: 10, framesLost: 0 });
  });

  it('leaves frames received after the checkpoint out of it, so a resume elsewhere counts them once', () => {
    const { open } = setup();
    const { p } = open('a');
    send(p, range(0, 3));
    expect(summary(p).framesReceived).toBe(4);
    expect(p.checkpoint().outcomes.received).toBe(0);
  });
});
