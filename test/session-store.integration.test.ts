import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { windowResult as buildWindowResult, type WindowResultMessage } from '../src/protocol/server-messages.js';
import { RedisSessionStore, type SessionRecord } from '../src/server/session-store.js';
import { WINDOWS_KEPT } from '../src/server/session.js';
import { createLogger } from '../src/utils/logger.js';
import { freePort, RedisServer } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

const TTL_MS = 60_000;

/** A window result as a session sends it, with some bulk. */
const windowResult = (resultId: number): WindowResultMessage =>
  buildWindowResult({
    resultId,
    seqFrom: (resultId - 1) * 50,
    seqTo: resultId * 50 - 1,
    framesAnalysed: 50,
    outcome: { score: 80, state: 'focused', signals: { note: 'x'.repeat(200) } },
    counts: { lost: 0, rejected: 0, duplicate: 0, late: 0, rateLimited: 0, shed: 0 },
  });

function record(id: string, windows: WindowResultMessage[], ended = false): SessionRecord {
  return {
    v: 1,
    id,
    userId: 'u1',
    resumeTokenHash: 'a'.repeat(64),
    createdAt: 1,
    expectedSeq: windows.length * 50,
    accountedSeqs: [],
    builder: null,
    context: { n: windows.length },
    nextResultId: windows.length + 1,
    windowAnalysed: 0,
    outcomes: { received: 0, analysed: 0, rejected: {}, dropped: {}, lost: 0, resyncs: 0 },
    stateSeconds: { focused: 0, distracted: 0, drowsy: 0, absent: 0, unknown: 0 },
    scoreSum: 0,
    scoreFrames: 0,
    recent: [],
    windows,
    ended,
    updatedAt: Date.now(),
  };
}

/** The windows a session holds after `n` windows (it keeps the last WINDOWS_KEPT). */
const held = (n: number) => Array.from({ length: n }, (_, i) => windowResult(i + 1)).slice(-WINDOWS_KEPT);

describe('RedisSessionStore', () => {
  let server: RedisServer;
  let client: Redis;
  const stores: RedisSessionStore[] = [];
  const open = async (instanceId: string, logger = createLogger('silent')) => {
    const store = new RedisSessionStore(server.url, TTL_MS, instanceId, logger);
    stores.push(store);
    await store.ready(5000);
    return store;
  };

  beforeAll(async () => {
    server = new RedisServer(await freePort());
    await server.start();
    client = new Redis(server.url);
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    client.disconnect();
    await server.stop();
  });

  it('appends window results instead of re-writing them: the record stays small, the history is whole', async () => {
    const store = await open('a');
    const sizes: number[] = [];
    for (let n = 0; n <= WINDOWS_KEPT + 40; n++) {
      // Saved faster than written, mostly: a write takes the latest record, whose windows include the skipped ones'.
      store.save(record('s1', held(n)));
      if (n % 20 === 0) {
        await store.flush(2000);
        sizes.push((await client.strlen('jipjung:session:s1')) as number);
      }
    }
    await store.flush(2000);
    // The stored record does not grow with the history.
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThan(50);
    expect(await client.llen('jipjung:windows:s1')).toBe(WINDOWS_KEPT);
    const ttl = await client.pttl('jipjung:windows:s1');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_MS);

    // Another instance reads the whole history back, in order, the oldest ones trimmed.
    const other = await open('b');
    const loaded = await other.load('s1');
    expect(loaded?.windows.map((w) => w.resultId)).toEqual(held(WINDOWS_KEPT + 40).map((w) => w.resultId));
    expect(loaded?.context).toEqual({ n: WINDOWS_KEPT });
  });

  it('a session resumed on another instance goes on appending there, each window once', async () => {
    const a = await open('a2');
    const b = await open('b2');
    for (let n = 1; n <= 5; n++) a.save(record('s2', held(n)));
    await a.flush(2000);
    // b resumes the session: it loads the record, then checkpoints with the windows it had plus new ones.
    const resumed = await b.load('s2');
    expect(resumed?.windows.map((w) => w.resultId)).toEqual([1, 2, 3, 4, 5]);
    const takenOver: string[] = [];
    a.on('takeover', (id: string) => takenOver.push(id));
    b.announceTakeover('s2');
    for (let n = 6; n <= 8; n++) b.save(record('s2', held(n)));
    await b.flush(2000);
    expect(await client.llen('jipjung:windows:s2')).toBe(8);
    // Back on a (its watermark was dropped on the takeover): whatever a re-appends is read once.
    await waitFor(() => takenOver.includes('s2'), { timeoutMs: 5000, what: "the takeover message to reach instance a", observed: () => takenOver });
    a.save(record('s2', held(9)));
    await a.flush(2000);
    const loaded = await b.load('s2');
    expect(loaded?.windows.map((w) => w.resultId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('an unknown session loads as null', async () => {
    const store = await open('c');
    expect(await store.load('nope')).toBeNull();
  });

  describe('a stored record that fails its check is no record', () => {
    /** A store whose log lines are kept, parsed. */
    const logged = async (instanceId: string) => {
      const lines: Array<Record<string, any>> = [];
      const sink = new Writable({
        write(chunk, _enc, cb) {
          for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
          cb();
        },
      });
      const store = await open(instanceId, createLogger('info', sink));
      const refusals = () => lines.filter((l) => l.event === 'session_record_refused');
      return { store, refusals };
    };
    /** Write a session's two keys as another instance (or a broken one) would have. */
    const put = async (id: string, value: string, windows: string[] = []) => {
      await client.set(`jipjung:session:${id}`, value, 'PX', TTL_MS);
      if (windows.length > 0) await client.rpush(`jipjung:windows:${id}`, ...windows);
    };
    const json = (r: unknown) => JSON.stringify(r);

    it('a record of another version: null, logged once with the versions, however often it is asked for', async () => {
      const { store, refusals } = await logged('v');
      await put('s-v2', json({ ...record('s-v2', []), v: 2 }));
      for (let i = 0; i < 3; i++) expect(await store.load('s-v2')).toBeNull();
      await waitFor(() => refusals().length > 0, { timeoutMs: 5000, what: 'the refusal to be logged', observed: refusals });
      expect(refusals()).toEqual([expect.objectContaining({ level: 'warn', store: 'redis', sessionId: 's-v2', reason: 'version 2; this server reads version 1' })]);
    });

    it('a corrupt record: text that is not JSON, a window that is not JSON, a field broken, another session\'s record', async () => {
      const { store, refusals } = await logged('c');
      const broken = { ...record('s-field', []), nextResultId: 'seven' };
      await put('s-text', '{"v":1,"id":"s-te');
      await put('s-window', json(record('s-window', [])), [json(windowResult(1)), '{"type":"res']);
      await put('s-field', json(broken));
      await put('s-other', json(record('s-someone-else', [])));
      for (const id of ['s-text', 's-window', 's-field', 's-other']) expect(await store.load(id), id).toBeNull();
      await waitFor(() => refusals().length === 4, { timeoutMs: 5000, what: 'four refusals to be logged', observed: refusals });
      expect(Object.fromEntries(refusals().map((l) => [l.sessionId, l.reason]))).toEqual({
        's-text': 'the record is not JSON',
        's-window': 'window 1 of 2 is not JSON',
        's-field': 'nextResultId: invalid_type',
        's-other': 'the record is of another session',
      });
    });

    it('a sound record next to them still loads, windows included', async () => {
      const store = await open('ok');
      await put('s-sound', json({ ...record('s-sound', []), windows: [] }), [json(windowResult(1)), json(windowResult(2))]);
      const loaded = await store.load('s-sound');
      expect(loaded?.windows.map((w) => w.resultId)).toEqual([1, 2]);
      expect(loaded).toMatchObject({ id: 's-sound', v: 1, userId: 'u1' });
    });
  });
});
