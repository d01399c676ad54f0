import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '../src/handler/frame-header.js';
import { serverMessageSchema } from '../src/protocol/server-messages.js';
import { frame, startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

const face = frame('face.jpg');

/** The clients of the running test: every message a live instance sent them must be a ServerMessage. */
const clients: TestClient[] = [];
const connect = async (...args: Parameters<typeof TestClient.connect>) => {
  const c = await TestClient.connect(...args);
  clients.push(c);
  return c;
};
afterEach(() => {
  for (const m of clients.splice(0).flatMap((c) => c.messages)) {
    expect(serverMessageSchema.safeParse(m).error?.issues, JSON.stringify(m).slice(0, 300)).toBeUndefined();
  }
});

describe('client protocol v1', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ...BRIGHTNESS_MODEL, HELLO_TIMEOUT_MS: '300' });
  });
  afterAll(() => t.close());

  it('a binary message before hello gets hello_required and close 1008', async () => {
    const c = await connect(t.url, null);
    c.sendFrame(face);
    expect(await c.waitForClose()).toEqual({ code: 1008, reason: 'hello_required' });
    expect(c.messages).toEqual([expect.objectContaining({ type: 'error', code: 'hello_required', fatal: true })]);
  });

  it('a text message that is not hello gets hello_required', async () => {
    const c = await connect(t.url, null);
    c.sendRaw(JSON.stringify({ type: 'bye' }));
    expect((await c.waitForClose()).code).toBe(1008);
    expect(c.errors()[0].code).toBe('hello_required');
  });

  it('silence after the upgrade gets hello_required after the hello timeout', async () => {
    const c = await connect(t.url, null);
    expect((await c.waitForClose(5000)).code).toBe(1008);
    expect(c.errors()[0]).toMatchObject({ code: 'hello_required', message: 'no hello within the hello timeout' });
  });

  it('welcome announces the session parameters', async () => {
    const c = await connect(t.url);
    expect(c.welcome).toMatchObject({
      type: 'welcome',
      protocol: 1,
      fps: 5,
      batchFrames: 5,
      windowFrames: 50,
      maxFrameBytes: 512 * 1024,
    });
    expect(c.welcome!.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    c.close();
  });

  it('garbage binary gets frame_invalid and the session keeps producing results', async () => {
    const c = await connect(t.url);
    await c.stream(face, 3);
    c.sendRaw(Buffer.from('garbage'));
    c.sendRaw(Buffer.from('0101000000000003' + '0000000000000000' + 'deadbeefdeadbeef', 'hex'));
    c.sendRaw(encodeFrame({ format: 1, seq: 3, captureTs: Date.now() }, Buffer.from('not a jpeg')));
    c.sendRaw(encodeFrame({ format: 2, seq: 3, captureTs: Date.now() }, face));
    c.sendRaw(encodeFrame({ version: 9, format: 1, seq: 3, captureTs: Date.now() }, face));
    c.sendRaw('{"type":"dance"}');
    c.sendRaw('not json');
    // Seq 3 is taken by the refused frames: the stream goes on from 4, as a client's counter does. (Sending 3 again
    // would be a duplicate, unless a later captureTs made it look like a restarted counter: a race on the clock.)
    for (let seq = 4; seq < 11; seq++) c.sendFrame(face, seq);
    await c.until(() => c.results('batch').length === 2);
    expect(c.errors().map((e) => [e.code, e.seq, e.fatal])).toEqual([
      ['frame_invalid', undefined, false],
      ['jpeg_invalid', 3, false],
      ['jpeg_invalid', 3, false],
      ['unsupported_format', 3, false],
      ['unsupported_version', 3, false],
      ['bad_message', undefined, false],
      ['bad_message', undefined, false],
    ]);
    const summary = await c.bye();
    expect(summary).toMatchObject({
      framesReceived: 15,
      framesAnalyzed: 10,
      framesRejected: 5,
      rejected: { frame_invalid: 1, jpeg_invalid: 2, unsupported_format: 1, unsupported_version: 1 },
    });
  });

  it('a frame over maxFrameBytes gets frame_too_large; far over it closes with 1009', async () => {
    const c = await connect(t.url);
    const big = Buffer.alloc(512 * 1024 + 10, 0);
    big[0] = 0xff;
    big[1] = 0xd8;
    c.sendFrame(big, 0);
    const err = await c.waitFor((m) => m.type === 'error');
    expect(err).toMatchObject({ code: 'frame_too_large', seq: 0, fatal: false });
    c.sendFrame(Buffer.alloc(2 * 1024 * 1024), 1);
    expect((await c.waitForClose()).code).toBe(1009);
  });

  it('bye analyses what is held, then sends the summary and closes with 1000', async () => {
    const c = await connect(t.url);
    await c.stream(face, 7);
    const summary = await c.bye();
    const kinds = c.results().map((r) => [r.kind, r.resultId, r.seqFrom, r.seqTo, r.framesAnalyzed]);
    expect(kinds).toEqual([
      ['batch', 1, 0, 4, 5],
      ['batch', 2, 5, 6, 2],
      ['window', 3, 0, 6, 7],
    ]);
    expect(summary).toMatchObject({ type: 'summary', framesReceived: 7, framesAnalyzed: 7, results: 3 });
    expect(summary.meanScore).toBeGreaterThan(0);
    expect(await c.waitForClose()).toEqual({ code: 1000, reason: 'bye' });
  });

  it('healthz and readyz answer', async () => {
    const h = await fetch(`${t.base}/healthz`);
    expect(h.status).toBe(200);
    const r = await fetch(`${t.base}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ready' });
    const detailed = await fetch(`${t.ops}/readyz`);
    expect(await detailed.json()).toMatchObject({ status: 'ready', workers: { size: 2, ready: 2 } });
    expect((await fetch(`${t.base}/nope`)).status).toBe(404);
  });
});
