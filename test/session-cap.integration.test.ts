/**
 * MAX_SESSIONS_PER_USER counts every session a user holds on the instance,
 * the detached ones waiting for their client too: hellos followed by closes
 * cannot pile up detached sessions (each kept RESUME_TTL_MS). A new session
 * over the cap takes the place of the user's longest-detached one; while
 * all of them are attached it is refused.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const token = (sub: string) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(SECRET));

describe('the per-user session cap', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1', AUTH_SECRET: SECRET, MAX_SESSIONS_PER_USER: '2', RESUME_TTL_MS: '60000' });
  });
  afterAll(() => t.close());

  const held = (userId: string) => [...t.app.stream.sessions.values()].filter((s) => s.userId === userId);

  /** Open a session and drop its connection without bye; resolves once the server has detached it. */
  async function openAndDrop(tok: string): Promise<{ sessionId: string; resumeToken: string }> {
    const c = await TestClient.connect(t.url, { type: 'hello', token: tok });
    const { sessionId, resumeToken } = c.welcome!;
    c.ws.terminate();
    await waitFor(() => t.logs.some((l) => l.event === 'session_detached' && l.sessionId === sessionId), { what: `session ${sessionId} detached` });
    return { sessionId, resumeToken };
  }

  it('hellos then closes leave at most the cap of detached sessions', async () => {
    const tok = await token('ivy');
    const opened = [];
    for (let i = 0; i < 6; i++) opened.push(await openAndDrop(tok));
    expect(held('ivy').map((s) => s.id)).toEqual(opened.slice(-2).map((o) => o.sessionId));
    // The ones that made room were ended, not kept waiting.
    for (const o of opened.slice(0, 4)) {
      expect(t.logs.find((l) => l.event === 'session_close' && l.sessionId === o.sessionId)).toMatchObject({ closeReason: 'evicted' });
    }
    // The newest can still be resumed.
    const last = opened.at(-1)!;
    const back = await TestClient.connect(t.url, { type: 'hello', token: tok, ...last });
    expect(back.welcome).toMatchObject({ sessionId: last.sessionId, resumed: true });
    back.close();
  });

  it('an attached session is never evicted: with every session attached, the next hello is refused', async () => {
    const tok = await token('jon');
    const dropped = await openAndDrop(tok);
    const a = await TestClient.connect(t.url, { type: 'hello', token: tok });
    // One attached, one detached: the detached one makes room.
    const b = await TestClient.connect(t.url, { type: 'hello', token: tok });
    expect(held('jon').map((s) => s.id).sort()).toEqual([a.welcome!.sessionId, b.welcome!.sessionId].sort());
    expect(t.app.stream.sessions.get(dropped.sessionId)).toBeUndefined();
    const c = await TestClient.connect(t.url, null);
    c.sendRaw(JSON.stringify({ type: 'hello', token: tok }));
    expect(await c.waitForClose()).toEqual({ code: 4429, reason: 'too_many_sessions' });
    expect(a.closed).toBeNull();
    expect(b.closed).toBeNull();
    a.close();
    b.close();
  });
});
