import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scene, startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('a live instance fed garbage control messages', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1' });
  });
  afterAll(() => t.close());

  it('answers bad_message, never crashes, and keeps serving sessions', async () => {
    const samples = fc.sample(fc.oneof(fc.string({ maxLength: 2000 }), fc.json({ maxDepth: 8 }), fc.constant(nested(50_000)), fc.constant('"' + 'é'.repeat(300_000) + '"')), {
      numRuns: 60,
      seed: 42,
    });
    for (let i = 0; i < samples.length; i += 15) {
      const c = await TestClient.connect(t.url);
      for (const text of samples.slice(i, i + 15)) c.sendRaw(text);
      await c.until(() => c.errors().length + c.messages.filter((m) => m.type === 'summary').length >= 1);
      c.ws.terminate();
    }
    const c = await TestClient.connect(t.url);
    await c.stream(scene('face'), 5);
    expect(await c.waitFor((m) => m.type === 'result')).toMatchObject({ framesAnalyzed: 5 });
    c.close();
    expect((await fetch(`${t.base}/healthz`)).status).toBe(200);
  });
});
