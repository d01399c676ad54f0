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
import { fakeClock, FakeWorkers, settle } from './helpers/fake-workers.js';

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
    { sessionQueueUnits: config.SESSION_QUEUE_UNITS, sessionQueueBytes: config.SESSION_QUEUE_BYTES, maxUnitAgeMs: config.MAX_UNIT_AGE_MS },
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
const results = (out: Out, kind?: 'batch' | 'window') => out.sent.filter((m): m is ResultMessage => m.type === 'result' && (!kind || m.kind === kind));
const errors = (out: Out) => out.sent.filter((m): m is ServerErrorMessage => m.type === 'error');
/** The pipeline's figures as the session's summary gives them. */
const summary = (p: SessionPipeline) => summaryMessage({ sessionId: p.sessionId, userId: 'u', durationMs: 0, ...p.figures() });
/** Every frame received ends analysed, rejected or dropped. */
const accountedFor = (p: SessionPipeline) => {
  const f = summary(p);
  return f.framesAnalyzed + f.framesRejected + f.framesDropped === f.framesReceived;
};

describe('a session pipeline', () => {
  it('turns frames into batch and window results, in seq order, each unit carrying the context the previous returned', async () => {
    const { budget, open, w } = setup();
    const { p, out } = open('a');
    send(p, range(0, 9));
    expect(w[0].pending).toHaveLength(1); // the second unit waits for the first one's context
    w[0].answer();
    await settle();
    expect(w[0].pending[0].meta.context).toEqual({ lastSeq: 4, previous: null });
    w[0].answer();
    await settle();
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

  it('keeps each session\'s results in order when sessions share a worker fed ahead', async () => {
    const { open, w } = setup({ WINDOW_FRAMES: '50' });
    w[0].modelMsAvg = 0.5; // 4 units ahead
    const a = open('a');
    const b = open('b');
    for (let i = 0; i < 4; i++) {
      send(a.p, range(i * 5, i * 5 + 4));
      send(b.p, range(i * 5, i * 5 + 4));
    }
    expect(w[0].pending.map((r) => r.meta.session)).toEqual(['a', 'b']);
    while (w[0].pending.length > 0) {
      w[0].answer();
      await settle();
    }
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
    expect(w[1].pending.map((r) => r.meta.frames.map((f) => f.seq))).toEqual([[0, 1, 2, 3, 4]]);
    w[1].answer();
    await settle();
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
    w[0].answer();
    await settle();
    expect(errors(out)).toEqual([expect.objectContaining({ code: 'model_error', seq: 0 })]);
    expect(results(out).map((r) => [r.kind, r.seqFrom, r.framesAnalyzed, r.state])).toEqual([
      ['batch', 0, 0, 'unknown'],
      ['batch', 5, 5, 'focused'],
      ['window', 0, 5, 'focused'],
    ]);
    expect(results(out)[0].signals).toEqual({ error: 'model_error' });
    // The retried unit went out with no context yet; the next one with none either (the failed unit returned none).
    expect(w[0].received.at(-1)?.context).toBeNull();
    expect(summary(p)).toMatchObject({ framesReceived: 10, framesAnalyzed: 5, dropped: { model_error: 5 } });
    expect(accountedFor(p)).toBe(true);
  });

  it('counts a frame the model could not decode as image_undecodable, in the batch and the window it closes', async () => {
    const { open, w } = setup();
    const { p, out } = open('a');
    send(p, range(0, 9));
    w[0].answer();
    await settle();
    w[0].answer({ undecodable: [2] });
    await settle();
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
    expect(w[0].pending[0].meta.frames.map((f) => f.seq)).toEqual([0, 1, 3, 4]);
    w[0].answer();
    await settle();
    expect(errors(out)).toEqual([expect.objectContaining({ code: 'jpeg_invalid', seq: 2 })]);
    const [batch] = results(out, 'batch');
    expect([batch.framesAnalyzed, batch.counts.rejected]).toEqual([4, 1]);
    expect(summary(p)).toMatchObject({ framesReceived: 5, framesRejected: 1, framesLost: 0 });
  });
});

describe('shedding through the pipeline', () => {
  it('sheds units that waited past MAX_UNIT_AGE_MS: their batch results still come, empty, without a worker', async () => {
    const { clock, open, w } = setup({ WINDOW_FRAMES: '50', MAX_UNIT_AGE_MS: '1000' });
    const { p, out } = open('a');
    send(p, range(0, 14));
    clock.advance(1001);
    w[0].answer();
    await settle();
    expect(results(out, 'batch').map((r) => [r.seqFrom, r.framesAnalyzed, r.counts.shed])).toEqual([
      [0, 5, 0],
      [5, 0, 5],
      [10, 0, 5],
    ]);
    expect(w[0].received).toHaveLength(1);
    expect(out.settled).toBe(3);
    expect(summary(p)).toMatchObject({ framesAnalyzed: 5, dropped: { shed: 10 } });
    expect([p.idle, accountedFor(p)]).toEqual([true, true]);
  });

  it('holds a session to its queue limit by shedding its oldest waiting unit', async () => {
    const { open, w } = setup({ WINDOW_FRAMES: '50', SESSION_QUEUE_UNITS: '2' });
    const { p, out } = open('a');
    send(p, range(0, 19));
    for (let i = 0; i < 3; i++) {
      w[0].answer();
      await settle();
    }
    expect(results(out, 'batch').map((r) => [r.seqFrom, r.framesAnalyzed])).toEqual([
      [0, 5],
      [5, 0],
      [10, 5],
      [15, 5],
    ]);
    expect(summary(p).dropped).toEqual({ shed: 5 });
  });

  it('gives a session its share of a full frame budget by shedding the oldest unit of the one above its share', () => {
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
    // Room was made from the greedy session's oldest waiting unit (5 frames), not the one at the worker.
    expect(summary(greedy.p).dropped).toEqual({ shed: 40 - fit + 5 });
    expect(w[0].pending.map((r) => r.meta.frames.length)).toEqual([5]);
    expect(budget.peak).toBeLessThanOrEqual(budget.limitBytes);
  });
});

describe('a session that closes', () => {
  it('drops what it holds as session_closed; its unit at a worker is answered, and every frame is counted once', async () => {
    const { budget, open, w } = setup({ WINDOW_FRAMES: '50' });
    const { p, out } = open('a');
    // 0-4 at the worker, 5-19 queued, 20-21 in the open batch, 23 waiting for 22.
    send(p, [...range(0, 21), 23]);
    expect(p.idle).toBe(false);
    p.close();
    expect(summary(p).dropped).toEqual({ session_closed: 18 });
    expect(budget.used).toBe(5 * JPEG.length);
    w[0].answer();
    await settle();
    expect(results(out, 'batch').map((r) => r.seqFrom)).toEqual([0]);
    expect(w[0].received).toHaveLength(1);
    expect(summary(p)).toMatchObject({ framesReceived: 23, framesAnalyzed: 5, framesDropped: 18 });
    expect([p.idle, budget.used, accountedFor(p)]).toEqual([true, 0, true]);
    // Frames after the close are not taken.
    send(p, [24]);
    expect(summary(p).framesReceived).toBe(23);
  });

  it('at bye, hands on what it holds and closes the window with the partial batch', async () => {
    const { open, w } = setup();
    const { p, out } = open('a');
    send(p, range(0, 6));
    w[0].answer();
    await settle();
    p.handOn(true);
    expect(w[0].pending[0].meta).toMatchObject({ closesWindow: true, frames: [{ seq: 5 }, { seq: 6 }] });
    w[0].answer();
    await settle();
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
    first.w[0].answer();
    await settle();
    const checkpoint = a.p.checkpoint();
    expect(checkpoint).toMatchObject({ expectedSeq: 5, nextResultId: 2, outcomes: { received: 5, analysed: 5 } });

    const second = setup();
    const b = second.open('a', checkpoint);
    expect(b.p.nextResultId).toBe(2);
    send(b.p, range(5, 9));
    expect(second.w[0].pending[0].meta.context).toEqual({ lastSeq: 4, previous: null });
    second.w[0].answer();
    await settle();
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
