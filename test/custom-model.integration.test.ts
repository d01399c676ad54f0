import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

describe('a model chosen by config', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ...BRIGHTNESS_MODEL });
  });
  afterAll(() => t.close());

  it('is the model the workers run, with its context carried between units', async () => {
    const c = await TestClient.connect(t.url);
    expect(c.welcome).toMatchObject({ protocol: 1, fps: 5, batchFrames: 5, windowFrames: 50, model: { name: 'brightness', version: '1' } });
    await c.stream(frame('face.jpg'), 10);
    await c.stream(frame('black.jpg'), 5);
    await c.until(() => c.results('batch').length === 3);
    const [a, b, black] = c.results('batch');
    expect(a.signals).toEqual({ unitsSeen: 1 });
    expect(b.signals).toEqual({ unitsSeen: 2 });
    expect(a.score).toBeGreaterThan(20);
    expect(black.score).toBeLessThan(2);
    expect(a.frames).toHaveLength(5);
    expect(a.frames[0]).toMatchObject({ analysed: true, seq: 0 });
    const summary = await c.bye();
    // bye closes the open window: one window result over the 15 frames.
    const windows = c.results('window');
    expect(windows).toHaveLength(1);
    expect(windows[0]).toMatchObject({ seqFrom: 0, seqTo: 14, framesAnalyzed: 15, resultId: 4 });
    expect(summary).toMatchObject({ framesReceived: 15, framesAnalyzed: 15, framesRejected: 0, framesDropped: 0, results: 4 });
    expect((await c.waitForClose()).code).toBe(1000);
  });
});
