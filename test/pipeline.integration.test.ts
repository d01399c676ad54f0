import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scene, startTestApp, type TestApp } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

describe('the whole pipeline with the default model', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('a face scores high and focused; an empty scene is absent', async () => {
    const c = await TestClient.connect(t.url);
    expect(c.welcome?.model).toEqual({ name: 'facemesh-pose', version: expect.any(String) });
    await c.stream(scene('face'), 50, 25);
    await c.stream(scene('empty'), 50, 25);
    await c.until(() => c.results().length === 22);
    const summary = await c.bye();

    const results = c.results();
    expect(results.map((r) => r.resultId)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    const batches = c.results('batch');
    const windows = c.results('window');
    expect(batches).toHaveLength(20);
    expect(windows).toHaveLength(2);
    // Each window result follows the batch that closes it.
    expect(results[10]).toMatchObject({ kind: 'window', seqFrom: 0, seqTo: 49, framesAnalyzed: 50 });
    expect(results[21]).toMatchObject({ kind: 'window', seqFrom: 50, seqTo: 99, framesAnalyzed: 50 });

    for (const b of batches.slice(0, 10)) {
      expect(b.state).toBe('focused');
      expect(b.score).toBeGreaterThanOrEqual(70);
      expect(b.framesAnalyzed).toBe(5);
      expect(b.frames.every((f: any) => f.face === true && f.box.length === 4)).toBe(true);
    }
    for (const b of batches.slice(10)) {
      expect(b.state).toBe('absent');
      expect(b.score).toBe(0);
    }
    expect(windows[0]).toMatchObject({ state: 'focused' });
    expect(windows[0].score).toBeGreaterThanOrEqual(70);
    expect(windows[1]).toMatchObject({ state: 'absent', score: 0 });
    expect(summary).toMatchObject({ framesReceived: 100, framesAnalyzed: 100, framesRejected: 0, framesDropped: 0, framesLost: 0 });
    expect(summary.stateSeconds).toMatchObject({ focused: 10, absent: 10 });
  });

  it('a black frame is analysed but not judged: state unknown, flagged dark', async () => {
    const c = await TestClient.connect(t.url);
    const { frame } = await import('./helpers/app.js');
    await c.stream(frame('black.jpg'), 5);
    const [b] = [await c.waitFor((m) => m.type === 'result')];
    expect(b).toMatchObject({ kind: 'batch', framesAnalyzed: 5, score: null, state: 'unknown' });
    expect(b.signals.qualityFlags).toEqual({ dark: 5, flat: 5 });
    c.close();
  });

  it('the same bytes again and again read as a frozen feed, not as a focused student', async () => {
    const c = await TestClient.connect(t.url);
    await c.stream(scene('face')[0], 20);
    await c.until(() => c.results('batch').length === 4);
    const flags = c.results('batch').map((b) => b.signals.qualityFlags.frozen ?? 0);
    // Frames 11-20 repeat the first for the tenth time or more.
    expect(flags).toEqual([0, 0, 5, 5]);
    expect(c.results('batch').slice(2).map((b) => b.state)).toEqual(['unknown', 'unknown']);
    c.close();
  });
});
