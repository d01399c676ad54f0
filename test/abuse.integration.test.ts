import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FORMAT_JPEG } from '../src/handler/frame-header.js';
import { startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const FLOOD = 5000;
/** A frame message of 18 bytes: cheap to send, past the rate limit after the burst. */
const tiny = (seq: number) => encodeFrame({ format: FORMAT_JPEG, seq, captureTs: Date.now() }, Buffer.from([0xff, 0xd8]));

describe('a flood from one connection', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      ...BRIGHTNESS_MODEL,
      WORKERS: '1',
      // The defaults: 10 frames of burst, 100 frames over the limit within 10 s close the connection.
      RATE_BURST_FRAMES: '10',
      RATE_ABUSE_FRAMES: '100',
      // The session ends when its connection does, so its frame counts are logged.
      RESUME_TTL_MS: '0',
    });
  });
  afterAll(() => t.close());

  const linesOf = (sessionId: string, event: string) => t.logs.filter((l) => l.event === event && l.sessionId === sessionId);

  it(`${FLOOD} tiny frames past the rate limit: one rate_abuse line, one close, the rest counted on the close line`, async () => {
    const c = await TestClient.connect(t.url);
    const id = c.welcome!.sessionId;
    for (let seq = 0; seq < FLOOD; seq++) c.sendRaw(tiny(seq));
    expect(await c.waitForClose()).toEqual({ code: 1008, reason: 'rate_limited' });
    const closed = await waitFor(() => linesOf(id, 'session_close')[0], { what: 'the session_close line' });
    expect(linesOf(id, 'rate_abuse')).toHaveLength(1);
    const connection = await waitFor(() => linesOf(id, 'connection_close')[0], { what: 'the connection_close line' });
    expect(c.errors().filter((e) => e.code === 'rate_limited')).toHaveLength(1);
    // The frames the session saw: the burst, then those over the limit up to the one that closed it.
    const seen = closed.frames.received as number;
    expect(seen).toBeGreaterThan(100);
    expect(seen).toBeLessThan(200);
    expect(closed.frames.dropped.rate_limited).toBeGreaterThan(100);
    // Everything after the close began was counted, not handled.
    expect(connection).toMatchObject({ level: 'info', closeCode: 1008 });
    expect(connection.ignored.frames).toBeGreaterThan(0);
    expect(seen + connection.ignored.frames).toBeLessThanOrEqual(FLOOD);
    expect(t.logs.filter((l) => l.sessionId === id).length).toBeLessThan(40);
  });

  it('a flood of control messages: one rate_abuse line and one close as well', async () => {
    const c = await TestClient.connect(t.url);
    const id = c.welcome!.sessionId;
    for (let i = 0; i < 2000; i++) c.sendRaw('{"type":"nope"}');
    expect(await c.waitForClose()).toEqual({ code: 1008, reason: 'rate_limited' });
    await c.until(() => c.closed !== null);
    expect(linesOf(id, 'rate_abuse')).toEqual([expect.objectContaining({ level: 'warn', messages: 'control' })]);
    const connection = await waitFor(() => linesOf(id, 'connection_close')[0], { what: 'the connection_close line' });
    expect(c.errors().filter((e) => e.code === 'rate_limited')).toHaveLength(1);
    expect(connection.ignored.texts).toBeGreaterThan(0);
    expect(t.logs.filter((l) => l.sessionId === id).length).toBeLessThan(40);
  });
});
