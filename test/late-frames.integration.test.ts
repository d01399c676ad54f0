/**
 * A frame that comes back a few seqs behind the last one, even with a newer
 * captureTs (a client that re-sends a frame and stamps it again), is a late
 * or duplicate frame: counted as such, never taken for a client that
 * restarted its count. Only a count that starts again at 0 or a jump of
 * RESYNC_GAP_FRAMES re-syncs a session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scene, startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

describe('a re-sent frame in a live session', () => {
  let t: TestApp;
  const faces = scene('face');
  beforeAll(async () => {
    t = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1' });
  });
  afterAll(() => t.close());

  it('seq 4 behind the last with a newer captureTs: dropped as duplicate, no re-sync, no second result for its batch', async () => {
    const c = await TestClient.connect(t.url);
    const now = Date.now();
    for (let seq = 0; seq < 10; seq++) c.sendFrame(faces[seq % 5], seq, now + seq * 200);
    await c.until(() => c.results('batch').length === 2, 30_000, 'the results of batches 0–4 and 5–9');
    // The client re-sends seq 5, stamped as it sends it again: newer than anything before.
    c.sendFrame(faces[0], 5, now + 9 * 200 + 1500);
    for (let seq = 10; seq < 15; seq++) c.sendFrame(faces[seq % 5], seq, now + seq * 200);
    const summary = await c.bye();
    expect(c.results('batch').map((b) => [b.seqFrom, b.seqTo, b.framesAnalyzed])).toEqual([
      [0, 4, 5],
      [5, 9, 5],
      [10, 14, 5],
    ]);
    expect(c.results('window').map((w) => [w.seqFrom, w.seqTo])).toEqual([[0, 14]]);
    expect(summary).toMatchObject({
      framesReceived: 16,
      framesAnalyzed: 15,
      framesRejected: 0,
      framesDropped: 1,
      dropped: { duplicate: 1 },
      framesLost: 0,
      resyncs: 0,
    });
    expect(t.logs.some((l) => l.event === 'resync' && l.sessionId === c.welcome!.sessionId)).toBe(false);
  });
});
