import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scene, startTestApp, TEST_MODELS, type TestApp } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

/**
 * The default model in real workers, wrapped to stamp each frame's result
 * with when its work was done (test/models/stamped_model.py): a unit's
 * frames are worked as they arrive, so its result waits for the last
 * frame's work only.
 */
describe('frames reach a worker as they arrive', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ MODEL: 'stamped_model:StampedModel', MODEL_PATH: TEST_MODELS });
  });
  afterAll(() => t.close());

  it("has a unit's first frames worked before its last is sent, and answers the unit after it", async () => {
    const images = scene('face');
    const c = await TestClient.connect(t.url);
    const start = Date.now();
    // Four frames at 5 fps, then a pause far longer than a frame's work before the unit's last.
    for (let seq = 0; seq < 4; seq++) {
      c.sendFrame(images[seq], seq, start + seq * 200);
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 1000));
    expect(c.results('batch')).toEqual([]);
    const lastSentAt = Date.now();
    c.sendFrame(images[4], 4, start + 4 * 200);
    await c.until(() => c.results('batch').length === 1);
    const [batch] = c.results('batch');
    expect(batch).toMatchObject({ seqFrom: 0, seqTo: 4 });
    expect(batch.frames.map((f: { seq: number; analysed: boolean }) => [f.seq, f.analysed])).toEqual([0, 1, 2, 3, 4].map((s) => [s, true]));
    const workedAt: number[] = batch.frames.map((f: { workedAt: number }) => f.workedAt);
    // Worked as they came, in order: the first four before the last was sent, the last after.
    for (let i = 1; i < 5; i++) expect(workedAt[i]).toBeGreaterThanOrEqual(workedAt[i - 1]);
    expect(workedAt.slice(0, 4).every((w) => w < lastSentAt)).toBe(true);
    expect(workedAt[4]).toBeGreaterThanOrEqual(lastSentAt);
    // The default model's own result, not a stand-in: a face in view.
    expect(batch.score).not.toBeNull();
    const summary = await c.bye();
    expect(summary).toMatchObject({ framesReceived: 5, framesAnalyzed: 5, framesRejected: 0, framesDropped: 0 });
  }, 60_000);

  it("spreads a burst of whole units from many sessions over the workers frame by frame: every session's first frame before any one's last", async () => {
    const images = scene('face');
    const clients = await Promise.all(Array.from({ length: 8 }, () => TestClient.connect(t.url)));
    // A class that starts together, each client sending a whole unit at once.
    const start = Date.now();
    for (const c of clients) for (let seq = 0; seq < 5; seq++) c.sendFrame(images[seq], seq, start + seq * 200);
    await Promise.all(clients.map((c) => c.until(() => c.results('batch').length === 1)));
    const worked = clients.map((c) => c.results('batch')[0].frames.map((f: { workedAt: number }) => f.workedAt));
    for (const w of worked) expect(w).toHaveLength(5);
    const firsts = worked.map((w) => w[0]);
    const lasts = worked.map((w) => w[4]);
    expect(Math.max(...firsts)).toBeLessThan(Math.min(...lasts));
    for (const c of clients) expect(await c.bye()).toMatchObject({ framesReceived: 5, framesAnalyzed: 5, framesDropped: 0 });
  }, 60_000);
});
