import { afterEach, describe, expect, it } from 'vitest';
import { frame, startTestApp, TEST_MODELS, type TestApp } from './helpers/app.js';
import { Instance } from './helpers/cluster.js';
import { TestClient } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const face = frame('face.jpg');
let t: TestApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

/** One worker, so the units after the bad reply can only be answered by its replacement. */
const withModel = (model: string, options: object) =>
  startTestApp({ MODEL: model, MODEL_PATH: TEST_MODELS, MODEL_OPTIONS: JSON.stringify(options), WORKERS: '1' });

/**
 * The worker answers the unit of seqs 5–9 badly: that unit fails as model_error,
 * the worker is replaced, the units before and after it are analysed.
 */
async function unitFailsAndSessionGoesOn(t: TestApp): Promise<void> {
  const firstPid = t.app.pool.workers()[0].pid;
  const c = await TestClient.connect(t.url);
  await c.stream(face, 20);
  await c.until(() => c.results('batch').length === 4);
  const batches = c.results('batch');
  expect(batches.map((b) => b.framesAnalyzed)).toEqual([5, 0, 5, 5]);
  expect(batches[1]).toMatchObject({ seqFrom: 5, seqTo: 9, score: null, state: 'unknown', frames: [] });
  expect(c.errors()).toEqual([expect.objectContaining({ code: 'model_error', seq: 5, fatal: false })]);
  for (const b of [batches[0], ...batches.slice(2)]) {
    expect(typeof b.score).toBe('number');
    expect(b.state).toBe('focused');
  }
  const summary = await c.bye();
  expect(summary).toMatchObject({ framesReceived: 20, framesAnalyzed: 15, dropped: { model_error: 5 } });

  await c.until(() => t.app.pool.readyCount === 1);
  expect(t.app.pool.restartCounts).toMatchObject({ bad_reply: 1, crash: 0, timeout: 0 });
  expect(t.app.pool.workers()[0].pid).not.toBe(firstPid);
  const bad = t.logs.filter((l) => l.event === 'worker_bad_reply');
  expect(bad).toHaveLength(1);
  expect(bad[0]).toMatchObject({ level: 'warn', workerPid: firstPid });
  expect(typeof bad[0].reason).toBe('string');
  expect(t.logs.some((l) => l.event === 'worker_exit' && l.cause === 'bad_reply' && l.workerPid === firstPid)).toBe(true);
  // Nothing the bad reply held reached the client or the logs.
  expect(JSON.stringify(c.messages)).not.toMatch(/script|asleep/);
  expect(JSON.stringify(bad)).not.toMatch(/script|asleep/);
  // The instance still takes sessions.
  expect((await fetch(`${t.base}/readyz`)).status).toBe(200);
}

describe('a RESULT of the wrong shape', () => {
  for (const [reply, what] of [
    ['empty', '{}'],
    ['score_text', 'a score that is markup, not a number'],
    ['frame_count', 'one frame entry too few'],
    ['state', 'a state outside the closed set'],
    ['score_range', 'a score above 100'],
  ]) {
    it(`${what}: fails its unit as model_error, the worker is replaced, the session goes on`, async () => {
      t = await withModel('worker_wrong_shape:WrongShapeModel', { reply, badSeqs: [7] });
      await unitFailsAndSessionGoesOn(t);
    });
  }
});

describe('a message that breaks the IPC protocol', () => {
  for (const [reply, what] of [
    ['length', 'random bytes behind an impossible length'],
    ['type', 'a message of an unknown type'],
    ['json', 'a RESULT that is not JSON'],
    ['unknown_id', 'a RESULT for a request never sent'],
    ['error_shape', 'a malformed ERROR'],
    ['ready', 'a second READY'],
  ]) {
    it(`${what}: fails the unit it was answering as model_error, the worker is replaced`, async () => {
      t = await withModel('worker_garbage:GarbageModel', { reply, badSeqs: [7] });
      await unitFailsAndSessionGoesOn(t);
    });
  }
});

describe('fuzzing the worker replies of a live instance', () => {
  let instance: Instance | null = null;
  afterEach(async () => {
    await instance?.stop();
    instance = null;
  });

  it('seeded malformed replies for every unit of one session, then the instance serves a healthy session', async () => {
    const UNITS = 16;
    instance = new Instance({
      WORKERS: '2',
      MODEL: 'worker_fuzz:FuzzModel',
      MODEL_OPTIONS: JSON.stringify({ untilSeq: UNITS * 5, seed: 22 }),
      // Replies that never come end in the request timeout; restarts must not back off.
      WORKER_REQUEST_TIMEOUT_MS: '1500',
      WORKER_MAX_RESTARTS: '1000',
      RATE_BURST_FRAMES: '1000',
      SESSION_QUEUE_UNITS: '50',
      MAX_UNIT_AGE_MS: '600000',
    });
    await instance.start();
    let exited = false;
    void instance.exited.then(() => (exited = true));
    const url = instance.streamUrl;

    const fuzzed = await TestClient.connect(url);
    await fuzzed.stream(face, UNITS * 5);
    await fuzzed.until(() => fuzzed.results('batch').length === UNITS, 120_000);
    const batches = fuzzed.results('batch');
    expect(batches.map((b) => b.framesAnalyzed)).toEqual(Array(UNITS).fill(0));
    expect(batches.every((b) => b.score === null && b.state === 'unknown')).toBe(true);
    expect(fuzzed.errors().map((e) => e.code)).toEqual(Array(UNITS).fill('model_error'));
    const fuzzedSummary = await fuzzed.bye();
    expect(fuzzedSummary).toMatchObject({ framesReceived: UNITS * 5, framesAnalyzed: 0, dropped: { model_error: UNITS * 5 } });

    // A new session, past the fuzzed seqs: every frame analysed.
    const healthy = await TestClient.connect(url);
    for (let i = 0; i < 10; i++) healthy.sendFrame(face, UNITS * 5 + i);
    await healthy.until(() => healthy.results('batch').length === 2, 60_000);
    expect(healthy.results('batch').map((b) => b.framesAnalyzed)).toEqual([5, 5]);
    expect(healthy.results('batch').every((b) => typeof b.score === 'number' && b.state === 'focused')).toBe(true);
    expect(healthy.errors()).toEqual([]);
    expect(await healthy.bye()).toMatchObject({ framesReceived: 10, framesAnalyzed: 10 });

    const logs = instance.logs;
    const exits = logs.filter((l) => l.event === 'worker_exit');
    expect(exits.length).toBeGreaterThanOrEqual(UNITS);
    expect(exits.every((l) => l.cause === 'bad_reply' || l.cause === 'timeout')).toBe(true);
    expect(exits.filter((l) => l.cause === 'bad_reply').length).toBeGreaterThan(UNITS / 2);
    expect(logs.some((l) => l.level === 'fatal' || l.event === 'unhandled_rejection' || l.event === 'uncaught_exception')).toBe(false);
    expect(JSON.stringify(logs)).not.toContain('<script>');
    // Still the same process, ready for more.
    expect(exited).toBe(false);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${instance!.port}/readyz`)).status === 200, { what: 'the instance to be ready' });
  }, 180_000);
});
