import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient, type Msg } from './helpers/client.js';

describe('frames in recycled memory, with real workers', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      ...BRIGHTNESS_MODEL,
      FPS: '30',
      RATE_BURST_FRAMES: '1000',
      RATE_ABUSE_FRAMES: '100000',
      // Small enough that frames are shed while others wait, so memory is given back on every path.
      FRAME_BUDGET_BYTES: String(1024 * 1024),
      SESSION_QUEUE_UNITS: '2',
    });
  });
  afterAll(() => t.close());

  it('every analysed frame reaches the model as its client sent it, while buffers are reused', async () => {
    const dir = path.join(import.meta.dirname, 'fixtures', 'frames');
    const images = readdirSync(dir)
      .filter((f) => f.endsWith('.jpg'))
      .map((f) => readFileSync(path.join(dir, f)));
    const clients = await Promise.all(Array.from({ length: 6 }, () => TestClient.connect(t.url)));
    const sentCrc = clients.map(() => new Map<number, number>());
    const analysed = clients.map(() => new Map<number, number>());
    clients.forEach((c, i) =>
      c.ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        const m: Msg = JSON.parse(data.toString());
        if (m.type === 'result' && m.kind === 'batch') for (const f of m.frames) if (f.analysed) analysed[i].set(f.seq, f.crc);
      }),
    );
    for (let round = 0; round < 60; round++) {
      for (const [i, c] of clients.entries()) {
        const seq = round;
        const image = images[(round * 7 + i * 3) % images.length];
        // Out of order, duplicated and missing seqs as well, so frames leave by every door.
        if (round % 13 === 5 && i % 2 === 0) continue;
        const captureTs = Date.now();
        c.sendFrame(image, seq, captureTs);
        sentCrc[i].set(seq, crc32(image));
        // A resend of the seq (with its captureTs; a newer one would be a client that restarted its count).
        if (round % 11 === 3) c.sendFrame(images[(i + 1) % images.length], seq, captureTs);
      }
      await new Promise((r) => setTimeout(r, round % 10 === 0 ? 30 : 2));
    }
    // One session leaves without saying bye, with frames still held.
    clients[5].ws.terminate();
    await Promise.all(clients.slice(0, 5).map((c) => c.bye()));

    let checked = 0;
    for (let i = 0; i < 5; i++) {
      for (const [seq, crc] of analysed[i]) {
        expect(crc, `session ${i} seq ${seq}`).toBe(sentCrc[i].get(seq));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    await expect.poll(() => t.app.budget.used).toBe(0);
    expect(t.app.budget.pool.reused).toBeGreaterThan(100);
    expect(t.app.budget.pool.strays).toBe(0);
  }, 60_000);
});
