import { afterEach, describe, expect, it } from 'vitest';
import { frame, startTestApp, TEST_MODELS, type TestApp } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

const face = frame('face.jpg');
let t: TestApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

const withModel = (model: string, options: object = {}, env: Record<string, string> = {}) =>
  startTestApp({ MODEL: model, MODEL_PATH: TEST_MODELS, MODEL_OPTIONS: JSON.stringify(options), ...env });

describe('worker supervision', () => {
  it('a worker killed with SIGKILL mid-stream is replaced and the session gets every later result', async () => {
    t = await withModel('brightness_model:BrightnessModel');
    const c = await TestClient.connect(t.url);
    await c.stream(face, 25, 50);
    await c.until(() => c.results('batch').length >= 3);
    const victim = t.app.pool.workers().find((w) => w.ready)!;
    const pid = victim.pid!;
    process.kill(pid, 'SIGKILL');
    await c.stream(face, 25, 50);
    await c.until(() => c.results('batch').length === 10);
    const summary = await c.bye();
    expect(c.results('window')).toHaveLength(1);
    const ids = c.results().map((r) => r.resultId);
    expect(ids).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    // The unit at the dead worker, if any, was retried on another one: nothing was lost.
    expect(summary).toMatchObject({ framesReceived: 50, framesAnalyzed: 50, framesDropped: 0 });
    await c.until(() => t!.app.pool.readyCount === 2);
    expect(t.app.pool.workers().map((w) => w.pid)).not.toContain(pid);
    expect(t.logs.some((l) => l.event === 'worker_exit' && l.signal === 'SIGKILL' && l.workerPid === pid)).toBe(true);
  });

  it('a unit that kills its worker twice is reported as model_error and the session goes on', async () => {
    t = await withModel('worker_crash:CrashModel', { crashSeqs: [7] });
    const c = await TestClient.connect(t.url);
    await c.stream(face, 20);
    await c.until(() => c.results('batch').length === 4);
    const batches = c.results('batch');
    expect(batches.map((b) => b.framesAnalyzed)).toEqual([5, 0, 5, 5]);
    expect(batches[1]).toMatchObject({ seqFrom: 5, seqTo: 9, score: null, state: 'unknown' });
    expect(c.errors()).toEqual([expect.objectContaining({ code: 'model_error', seq: 5, fatal: false })]);
    const summary = await c.bye();
    expect(summary).toMatchObject({ framesReceived: 20, framesAnalyzed: 15, dropped: { model_error: 5 } });
    await c.until(() => t!.app.pool.readyCount === 2);
    expect(t.app.pool.restartCounts.crash).toBe(2);
  });

  it('a unit past the request timeout kills and replaces its worker', async () => {
    t = await withModel('worker_slow:SlowModel', { sleepMs: 5000, slowSeqs: [0] }, { WORKER_REQUEST_TIMEOUT_MS: '500' });
    const c = await TestClient.connect(t.url);
    await c.stream(face, 10);
    await c.until(() => c.results('batch').length === 2);
    expect(c.results('batch').map((b) => b.framesAnalyzed)).toEqual([0, 5]);
    expect(c.errors()[0]).toMatchObject({ code: 'model_error', seq: 0 });
    await c.until(() => t!.app.pool.readyCount === 2);
    expect(t.app.pool.restartCounts.timeout).toBe(1);
  });

  it('a model that raises or returns malformed output costs one unit, not the worker', async () => {
    t = await withModel('worker_bad_output:BadOutputModel', { badSeqs: [2], raiseSeqs: [7] });
    const c = await TestClient.connect(t.url);
    await c.stream(face, 15);
    await c.until(() => c.results('batch').length === 3);
    expect(c.results('batch').map((b) => b.framesAnalyzed)).toEqual([0, 0, 5]);
    expect(c.errors().map((e) => e.code)).toEqual(['model_error', 'model_error']);
    const pids = t.app.pool.workers().map((w) => w.pid);
    expect(t.app.pool.restartCounts).toEqual({ crash: 0, timeout: 0, start_failed: 0, bad_reply: 0 });
    expect(pids).toHaveLength(2);
    expect(t.logs.some((l) => l.event === 'worker_output' && /malformed output/.test(l.msg))).toBe(true);
  });

  it('a model that prints does not corrupt the channel; its output is logged', async () => {
    t = await withModel('worker_prints:PrintsModel');
    const c = await TestClient.connect(t.url);
    await c.stream(face, 10);
    await c.until(() => c.results('batch').length === 2);
    expect(c.results('batch').map((b) => b.framesAnalyzed)).toEqual([5, 5]);
    expect(t.logs.some((l) => l.event === 'worker_output' && l.stream === 'stdout' && l.msg === 'model says hello on stdout')).toBe(true);
    expect(t.logs.some((l) => l.event === 'worker_output' && l.stream === 'stderr' && l.msg === 'model says hello on stderr')).toBe(true);
  });

  it('a model that cannot load fails start-up with its own message', async () => {
    await expect(withModel('worker_init_fails:InitFailsModel', {}, { WORKER_MAX_RESTARTS: '0' })).rejects.toThrow(
      /weights not found: \/nonexistent\/weights.bin/,
    );
  });
});
