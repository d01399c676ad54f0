import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameBudget } from '../src/handler/frame-budget.js';
import { Scheduler } from '../src/handler/scheduler.js';
import { findPython } from '../src/ipc/python.js';
import { WorkerPool } from '../src/ipc/worker-pool.js';
import { createLogger } from '../src/utils/logger.js';
import { frame, TEST_DIR, TEST_MODELS } from './helpers/app.js';
import { owner, unit } from './helpers/units.js';
import { waitFor } from './helpers/wait.js';

const BENCH_MODELS = path.resolve(TEST_DIR, '..', 'bench', 'models');
const image = frame('face.jpg');

/**
 * One worker behind the scheduler; `warm` units of one session answered one
 * at a time (the model's time per frame is learnt), then one unit from each
 * of `burst` sessions at once.
 */
async function inFlightAfterBurst(model: string, modelPath: string, modelOptions: object, warm: number, burst: number) {
  const pool = new WorkerPool(
    {
      size: 1,
      python: findPython(undefined),
      model,
      modelOptions: JSON.stringify(modelOptions),
      modelPath,
      startTimeoutMs: 30_000,
      requestTimeoutMs: 10_000,
      maxRestarts: 1,
      restartWindowMs: 1000,
      backoffMaxMs: 1000,
    },
    createLogger('silent'),
  );
  pools.push(pool);
  await pool.start();
  const budget = new FrameBudget(1024 ** 3);
  const scheduler = new Scheduler(pool, budget, { sessionQueueUnits: 100, sessionQueueBytes: 1024 ** 3, maxUnitAgeMs: 600_000, framePeriodMs: 200, batchFrames: 5 });
  const jpeg = { bytes: image.length };
  const warming = owner('warm');
  for (let i = 0; i < warm; i++) {
    const u = unit(budget, warming, { seqFrom: i * 5, frames: 5, ...jpeg, createdAt: performance.now() });
    u.frames.forEach((f) => image.copy(f.image));
    scheduler.enqueue(warming, u);
    await waitFor(() => warming.answers.length === i + 1, { what: `warm-up unit ${i}` });
  }
  const sessions = Array.from({ length: burst }, (_, i) => owner(`s${i}`));
  for (const s of sessions) {
    const u = unit(budget, s, { seqFrom: 0, frames: 5, ...jpeg, createdAt: performance.now() });
    u.frames.forEach((f) => image.copy(f.image));
    scheduler.enqueue(s, u);
  }
  const worker = pool.workers()[0];
  const inFlight = { atWorker: worker.inFlight, seenByScheduler: scheduler.heldAt(worker) };
  const { frameMsAvg: frameMs, closeMsAvg: closeMs } = worker;
  await waitFor(() => sessions.every((s) => s.answers.length === 1), { what: 'every session answered' });
  const kinds = [warming, ...sessions].flatMap((s) => s.answers.map((a) => a.answer.kind));
  const frames = [warming, ...sessions].flatMap((s) => s.answers.map((a) => (a.answer.kind === 'result' ? a.answer.result.frames.length : 0)));
  return { inFlight, frameMs, closeMs, after: worker.inFlight, afterScheduler: scheduler.heldAt(worker), kinds, frames, budgetUsed: budget.used };
}

const pools: WorkerPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

describe('how many frames a worker holds at once', () => {
  it('a trivial model gets 4 frames ahead of their work, so it never waits on a round trip', async () => {
    const r = await inFlightAfterBurst('noop_model:NoopModel', BENCH_MODELS, {}, 20, 10);
    expect(r.frameMs).toBeLessThan(1);
    // The first frames of four sessions' units: each opened, none closed yet.
    expect(r.inFlight).toEqual({ atWorker: 4, seenByScheduler: 4 });
    expect([r.after, r.afterScheduler]).toEqual([0, 0]);
    expect(new Set(r.kinds)).toEqual(new Set(['result']));
    expect(new Set(r.frames)).toEqual(new Set([5]));
    expect(r.budgetUsed).toBe(0);
  }, 60_000);

  it('a model that does its 30 ms at the close of a unit holds one thing at a time', async () => {
    // SlowModel keeps the frames (the default open) and sleeps in analyse, at the close: its frames cost
    // nothing, its closes 30 ms, and a close waiting in the pipe would hold up every frame behind it.
    const r = await inFlightAfterBurst('worker_slow:SlowModel', TEST_MODELS, { sleepMs: 30 }, 3, 4);
    expect(r.closeMs).toBeGreaterThan(20);
    expect(r.frameMs).toBeLessThan(1);
    expect(r.inFlight).toEqual({ atWorker: 1, seenByScheduler: 1 });
    expect([r.after, r.afterScheduler]).toEqual([0, 0]);
    expect(new Set(r.kinds)).toEqual(new Set(['result']));
    expect(new Set(r.frames)).toEqual(new Set([5]));
    expect(r.budgetUsed).toBe(0);
  }, 60_000);
});
