import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnalyseMeta } from '../src/ipc/codec.js';
import { findPython } from '../src/ipc/python.js';
import { WorkerPool } from '../src/ipc/worker-pool.js';
import { createLogger } from '../src/utils/logger.js';
import { frame, TEST_DIR, TEST_MODELS } from './helpers/app.js';

const BENCH_MODELS = path.resolve(TEST_DIR, '..', 'bench', 'models');
const image = frame('face.jpg');

function unit(n: number): AnalyseMeta {
  return {
    session: 's',
    closesWindow: false,
    batchFrames: 5,
    windowFrames: 50,
    fps: 5,
    frames: Array.from({ length: 5 }, (_, i) => ({ seq: n * 5 + i, captureTs: 1.7e12 + (n * 5 + i) * 200, format: 1, width: 640, height: 480 })),
    context: null,
  };
}

/** One worker; `warm` units answered one at a time (the model's time is learnt), then `burst` at once. */
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
  for (let i = 0; i < warm; i++) await pool.run(unit(i), Array(5).fill(image));
  const results = Array.from({ length: burst }, (_, i) => pool.run(unit(warm + i), Array(5).fill(image)));
  const inFlight = pool.workers()[0].inFlight;
  const modelMs = pool.workers()[0].modelMsAvg;
  await Promise.all(results);
  return { inFlight, modelMs, after: pool.workers()[0].inFlight };
}

const pools: WorkerPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

describe('how many units a worker holds at once', () => {
  it('a trivial model gets 4 units ahead of its answers, so it never waits on a round trip', async () => {
    const r = await inFlightAfterBurst('noop_model:NoopModel', BENCH_MODELS, {}, 20, 10);
    expect(r.modelMs).toBeLessThan(1);
    expect(r.inFlight).toBe(4);
    expect(r.after).toBe(0);
  }, 60_000);

  it('a model that takes 30 ms a unit holds one unit at a time', async () => {
    const r = await inFlightAfterBurst('worker_slow:SlowModel', TEST_MODELS, { sleepMs: 30 }, 3, 4);
    expect(r.modelMs).toBeGreaterThan(5);
    expect(r.inFlight).toBe(1);
  }, 60_000);
});
