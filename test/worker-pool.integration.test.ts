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
 * at a time (the model's time is learnt), then one unit from each of `burst`
 * sessions at once.
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
  const scheduler = new Scheduler(pool, budget, { sessionQueueUnits: 100, sessionQueueBytes: 1024 ** 3, maxUnitAgeMs: 600_000 });
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
  const inFlight = { atWorker: worker.inFlight, seenByScheduler: scheduler.unitsAt(worker) };
  const modelMs = worker.modelMsAvg;
  await waitFor(() => sessions.every((s) => s.answers.length === 1), { what: 'every session answered' });
  const kinds = [warming, ...sessions].flatMap((s) => s.answers.map((a) => a.answer.kind));
  return { inFlight, modelMs, after: worker.inFlight, kinds, budgetUsed: budget.used };
}

const pools: WorkerPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

describe('how many units a worker holds at once', () => {
  it('a trivial model gets 4 units ahead of its answers, so it never waits on a round trip', async () => {
    const r = await inFlightAfterBurst('noop_model:NoopModel', BENCH_MODELS, {}, 20, 10);
    expect(r.modelMs).toBeLessThan(1);
    expect(r.inFlight).toEqual({ atWorker: 4, seenByScheduler: 4 });
    expect(r.after).toBe(0);
    expect(new Set(r.kinds)).toEqual(new Set(['result']));
    expect(r.budgetUsed).toBe(0);
  }, 60_000);

  it('a model that takes 30 ms a unit holds one unit at a time', async () => {
    const r = await inFlightAfterBurst('worker_slow:SlowModel', TEST_MODELS, { sleepMs: 30 }, 3, 4);
    expect(r.modelMs).toBeGreaterThan(5);
    expect(r.inFlight).toEqual({ atWorker: 1, seenByScheduler: 1 });
  }, 60_000);
});
