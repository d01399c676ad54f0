/**
 * The resume token: a new one in the welcome of every resume (the one
 * before stops working), and only its SHA-256 kept, in memory and in Redis,
 * so that neither a heap dump nor a read of Redis resumes anybody's session.
 * A record written by an instance that kept the token itself still resumes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scene, startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';
import { freePort, RedisServer } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

const faces = scene('face');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const KEY = (id: string) => `jipjung:session:${id}`;

describe('resume tokens', () => {
  let redis: RedisServer;
  let client: Redis;
  let t: TestApp;
  beforeAll(async () => {
    redis = new RedisServer(await freePort());
    await redis.start();
    client = new Redis(redis.url);
    t = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1', REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await t?.close();
    client?.disconnect();
    await redis?.stop();
  });

  /** The stored record of a session, once it satisfies `ok`. */
  const stored = (id: string, ok: (r: Record<string, any>) => boolean, what: string) =>
    waitFor(
      async () => {
        const raw = await client.get(KEY(id));
        const r = raw ? JSON.parse(raw) : null;
        return r && ok(r) ? { raw: raw!, r } : false;
      },
      { what, observed: async () => client.get(KEY(id)) },
    );

  it('are kept hashed in memory and in Redis', async () => {
    const c = await TestClient.connect(t.url);
    const { sessionId, resumeToken } = c.welcome!;
    expect(resumeToken).toMatch(/^[\w-]{32}$/);
    const session = t.app.stream.sessions.get(sessionId)!;
    expect(session.resumeTokenHash).toBe(sha256(resumeToken));
    expect(Object.values(session)).not.toContain(resumeToken);
    expect(JSON.stringify(session.toRecord())).not.toContain(resumeToken);

    await c.stream(faces, 5);
    await c.waitFor((m) => m.type === 'result');
    const { raw, r } = await stored(sessionId, () => true, 'the checkpoint of the first unit');
    expect(raw).not.toContain(resumeToken);
    expect(r.resumeTokenHash).toBe(sha256(resumeToken));
    c.close();
    await c.waitForClose();
  });

  it('rotate on every resume: the welcome brings a new one and the old one no longer resumes', async () => {
    const c1 = await TestClient.connect(t.url);
    const { sessionId, resumeToken: first } = c1.welcome!;
    c1.ws.terminate();
    await c1.waitForClose();

    const c2 = await TestClient.connect(t.url, { type: 'hello', sessionId, resumeToken: first });
    expect(c2.welcome).toMatchObject({ sessionId, resumed: true });
    const second = c2.welcome!.resumeToken;
    expect(second).toMatch(/^[\w-]{32}$/);
    expect(second).not.toBe(first);
    expect(t.app.stream.sessions.get(sessionId)!.resumeTokenHash).toBe(sha256(second));
    // Written to Redis at once: the next resume may be on another instance.
    await stored(sessionId, (r) => r.resumeTokenHash === sha256(second), 'the new token hash in Redis');
    c2.ws.terminate();
    await c2.waitForClose();

    const stale = await TestClient.connect(t.url, { type: 'hello', sessionId, resumeToken: first });
    expect(stale.welcome).toMatchObject({ resumed: false });
    expect(stale.welcome!.sessionId).not.toBe(sessionId);
    stale.close();

    const c3 = await TestClient.connect(t.url, { type: 'hello', sessionId, resumeToken: second });
    expect(c3.welcome).toMatchObject({ sessionId, resumed: true });
    expect(c3.welcome!.resumeToken).not.toBe(second);
    c3.close();
  });

  it('a record that holds the token itself (written before tokens were hashed) still resumes, and is then stored hashed', async () => {
    // A real record of this version, turned into one of the version before.
    const c = await TestClient.connect(t.url);
    await c.stream(faces, 5);
    await c.waitFor((m) => m.type === 'result');
    const { r } = await stored(c.welcome!.sessionId, () => true, 'a checkpoint');
    await c.bye();
    const id = randomUUID();
    const legacyToken = 'L'.repeat(32);
    const { resumeTokenHash: _, ...rest } = r;
    await client.set(KEY(id), JSON.stringify({ ...rest, id, ended: false, resumeToken: legacyToken }), 'PX', 60_000);

    const resumed = await TestClient.connect(t.url, { type: 'hello', sessionId: id, resumeToken: legacyToken });
    expect(resumed.welcome).toMatchObject({ sessionId: id, resumed: true });
    const fresh = resumed.welcome!.resumeToken;
    const { raw } = await stored(id, (rec) => rec.resumeTokenHash === sha256(fresh), 'the resumed record, hashed');
    expect(raw).not.toContain(legacyToken);
    expect(raw).not.toContain(fresh);
    resumed.close();
  });
});
