import net from 'node:net';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scene, startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const key = new TextEncoder().encode(SECRET);
const faces = scene('face');

async function token(sub: string, opts: { expiresInS?: number; scope?: string; secret?: Uint8Array; sid?: string } = {}): Promise<string> {
  const jwt = new SignJWT({ ...(opts.scope ? { scope: opts.scope } : {}), ...(opts.sid ? { sid: opts.sid } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.expiresInS ?? 600));
  return jwt.sign(opts.secret ?? key);
}

/** The HTTP status an upgrade request gets, or 101. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => {});
  });
}

describe('authenticated sessions', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      AUTH_SECRET: SECRET,
      ...BRIGHTNESS_MODEL,
      WORKERS: '1',
      MAX_SESSIONS_PER_USER: '2',
      ALLOWED_ORIGINS: 'https://school.example,http://localhost:8080',
      RESUME_TTL_MS: '10000',
    });
  });
  afterAll(() => t.close());

  const origin = { origin: 'https://school.example' };
  const connect = (hello: Record<string, unknown>) => TestClient.connect(t.url, hello, origin);

  it('no token: unauthorized, close 4401', async () => {
    const c = await TestClient.connect(t.url, null, origin);
    c.sendRaw(JSON.stringify({ type: 'hello' }));
    expect(await c.waitForClose()).toEqual({ code: 4401, reason: 'unauthorized' });
    expect(c.errors()[0]).toMatchObject({ code: 'unauthorized', fatal: true, message: 'a token is required' });
  });

  it('bad signature: unauthorized, and the token never reaches the logs', async () => {
    const forged = await token('alice', { secret: new TextEncoder().encode('another-secret-that-is-long-enough-98765') });
    const c = await TestClient.connect(t.url, null, origin);
    c.sendRaw(JSON.stringify({ type: 'hello', token: forged }));
    expect((await c.waitForClose()).code).toBe(4401);
    expect(c.errors()[0].message).toMatch(/not valid/);
    expect(JSON.stringify(t.logs)).not.toContain(forged.split('.')[2]);
  });

  it('expired token: unauthorized', async () => {
    const c = await TestClient.connect(t.url, null, origin);
    c.sendRaw(JSON.stringify({ type: 'hello', token: await token('alice', { expiresInS: -10 }) }));
    expect((await c.waitForClose()).code).toBe(4401);
    expect(c.errors()[0].message).toBe('the token has expired');
  });

  it('a token that expires during the session closes it with 4401 at expiry', async () => {
    const expiresInS = 2;
    const c = await connect({ type: 'hello', token: await token('erin', { expiresInS }) });
    expect(c.welcome).toMatchObject({ auth: 'secret', resumed: false });
    // The close comes at expiry; the wait only bounds a server that never closes.
    const closed = await c.waitForClose(expiresInS * 1000 + 15_000);
    expect(closed.code).toBe(4401);
    expect(c.errors().at(-1)).toMatchObject({ code: 'unauthorized', message: 'the token has expired' });
  });

  it('the user id goes into logs and session state', async () => {
    const c = await connect({ type: 'hello', token: await token('bob') });
    expect(t.logs.some((l) => l.event === 'session_open' && l.userId === 'bob' && l.sessionId === c.welcome!.sessionId)).toBe(true);
    const summary = await c.bye();
    expect(summary.userId).toBe('bob');
  });

  it('resume needs the same user and the resumeToken; results continue without repeats or holes', async () => {
    const alice = await token('alice');
    const c1 = await connect({ type: 'hello', token: alice });
    const { sessionId, resumeToken } = c1.welcome!;
    expect(resumeToken).toMatch(/^[\w-]{32}$/);
    await c1.stream(faces, 10);
    await c1.until(() => c1.results().length === 2);
    c1.ws.terminate();
    await c1.waitForClose();

    // Someone else with alice's session id and token gets a new session of their own, not hers.
    const mallory = await connect({ type: 'hello', token: await token('mallory'), sessionId, resumeToken });
    expect(mallory.welcome!.sessionId).not.toBe(sessionId);
    expect(mallory.welcome!.resumed).toBe(false);
    // Alice without the resume token: the same answer.
    const guess = await connect({ type: 'hello', token: alice, sessionId, resumeToken: 'x'.repeat(32) });
    expect(guess.welcome!.sessionId).not.toBe(sessionId);
    guess.close();
    mallory.close();

    const c2 = await connect({ type: 'hello', token: alice, sessionId, resumeToken, lastResultId: 2 });
    expect(c2.welcome).toMatchObject({ sessionId, resumed: true, nextResultId: 3 });
    for (let seq = 10; seq < 15; seq++) c2.sendFrame(faces[seq % 5], seq);
    const summary = await c2.bye();
    expect(c2.results().map((r) => r.resultId)).toEqual([3, 4]);
    expect(summary).toMatchObject({ framesReceived: 15, framesAnalyzed: 15 });
  });

  it('results made while the client was away are delivered on resume', async () => {
    const dana = await token('dana');
    const c1 = await connect({ type: 'hello', token: dana });
    const { sessionId, resumeToken } = c1.welcome!;
    await c1.stream(faces, 5);
    c1.ws.terminate(); // before the result could come back
    await c1.waitForClose();
    // The server has seen the client go, and analysed the unit meanwhile.
    const logged = (event: string) => t.logs.some((l) => l.event === event && l.sessionId === sessionId);
    await waitFor(() => logged('session_detached') && logged('unit_done'), {
      what: 'the session to be detached and its unit analysed',
      observed: () => t.logs.filter((l) => l.sessionId === sessionId).map((l) => l.event),
    });
    const c2 = await connect({ type: 'hello', token: dana, sessionId, resumeToken });
    const r = await c2.waitFor((m) => m.type === 'result');
    expect(r).toMatchObject({ resultId: 1, seqFrom: 0, seqTo: 4 });
    c2.close();
  });

  it('a second connection resuming a live session takes it over; the first is closed with 4409', async () => {
    const carl = await token('carl');
    const c1 = await connect({ type: 'hello', token: carl });
    const { sessionId, resumeToken } = c1.welcome!;
    const c2 = await connect({ type: 'hello', token: carl, sessionId, resumeToken });
    expect(c2.welcome!.sessionId).toBe(sessionId);
    expect(await c1.waitForClose()).toEqual({ code: 4409, reason: 'session_replaced' });
    await c2.stream(faces, 5);
    expect((await c2.waitFor((m) => m.type === 'result')).resultId).toBe(1);
    c2.close();
  });

  it('a user over the session cap gets too_many_sessions, close 4429', async () => {
    const fay = await token('fay');
    const a = await connect({ type: 'hello', token: fay });
    const b = await connect({ type: 'hello', token: fay });
    const c = await TestClient.connect(t.url, null, origin);
    c.sendRaw(JSON.stringify({ type: 'hello', token: fay }));
    expect(await c.waitForClose()).toEqual({ code: 4429, reason: 'too_many_sessions' });
    a.close();
    b.close();
  });

  it('GET /v1/sessions/:id: the owner and a service token may read it, others get 404', async () => {
    const gil = await token('gil');
    const c = await connect({ type: 'hello', token: gil });
    await c.stream(faces, 5);
    await c.bye();
    const url = `${t.base}/v1/sessions/${c.welcome!.sessionId}`;
    const get = async (tok?: string) => fetch(url, { headers: tok ? { authorization: `Bearer ${tok}` } : {} });
    expect((await get()).status).toBe(401);
    expect((await get(await token('mallory'))).status).toBe(404);
    expect((await fetch(`${t.base}/v1/sessions/nope`, { headers: { authorization: `Bearer ${gil}` } })).status).toBe(404);
    const own = await get(gil);
    expect(own.status).toBe(200);
    const body = await own.json();
    expect(body).toMatchObject({ sessionId: c.welcome!.sessionId, userId: 'gil', state: 'ended', summary: { framesAnalyzed: 5 } });
    expect(body.windows).toHaveLength(1);
    expect((await get(await token('platform', { scope: 'sessions:read' }))).status).toBe(200);
  });

  it('another origin gets 403 at the upgrade, before any WebSocket exists', async () => {
    expect(await upgradeStatus(t.url, { origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(t.url, {})).toBe(403);
    expect(await upgradeStatus(t.url, origin)).toBe(101);
  });
});

describe('abuse limits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      ...BRIGHTNESS_MODEL,
      WORKERS: '1',
      MAX_CONNECTIONS_PER_IP: '4',
      HELLO_TIMEOUT_MS: '300',
      HTTP_HEADERS_TIMEOUT_MS: '500',
    });
  });
  afterAll(() => t.close());

  it('demo mode says so in readyz and in a start-up warning', async () => {
    expect(await (await fetch(`${t.ops}/readyz`)).json()).toMatchObject({ auth: 'demo' });
    expect(t.logs.some((l) => l.event === 'demo_mode' && l.level === 'warn')).toBe(true);
  });

  it('more open connections than the per-address cap get 429', async () => {
    const open = await Promise.all([1, 2, 3, 4].map(() => TestClient.connect(t.url)));
    expect(await upgradeStatus(t.url)).toBe(429);
    open.forEach((c) => c.close());
    await Promise.all(open.map((c) => c.waitForClose()));
  });

  it('an upgrade storm from one address is refused with 429', async () => {
    const storm = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1', UPGRADES_PER_IP_PER_MINUTE: '30' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push(await upgradeStatus(storm.url));
      // A burst of a tenth of the minute's allowance, then refusals.
      expect(statuses).toEqual([101, 101, 101, 429, 429, 429, 429, 429]);
      expect(storm.logs.some((l) => l.event === 'upgrade_refused' && l.status === 429)).toBe(true);
    } finally {
      await storm.close();
    }
  });

  it('a slow-loris client sending its headers byte by byte is cut off', async () => {
    const socket = net.connect(t.app.port, '127.0.0.1');
    socket.on('error', () => {}); // the server cuts it off mid-write
    await new Promise((r) => socket.once('connect', r));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const request = 'GET /v1/stream HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n';
    let i = 0;
    const drip = setInterval(() => {
      if (i < request.length && !socket.destroyed) socket.write(request[i++]);
    }, 100);
    await closed;
    clearInterval(drip);
    // Cut off mid-request, at HTTP_HEADERS_TIMEOUT_MS (500 ms) rather than Node's minute: the drip, a byte every
    // 100 ms, had not got through the request line and headers yet.
    expect(i).toBeGreaterThan(0);
    expect(i).toBeLessThan(request.length);
  });

  it('an oversized message closes with 1009 and leaves nothing held', async () => {
    const c = await TestClient.connect(t.url);
    c.sendRaw(Buffer.alloc(4 * 1024 * 1024, 1));
    expect((await c.waitForClose()).code).toBe(1009);
    await c.until(() => t.app.stream.sessions.size === 0 || [...t.app.stream.sessions.values()].every((s) => !s.attached));
    expect(t.app.budget.used).toBe(0);
  });
});

describe('operations routes', () => {
  it('/metrics and /dashboard need METRICS_TOKEN, as a header, when it is set', async () => {
    const t = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1', METRICS_TOKEN: 'ops-token-0123456789' });
    try {
      for (const p of ['/metrics', '/dashboard/data']) expect((await fetch(`${t.base}${p}`)).status, p).toBe(401);
      expect((await fetch(`${t.base}/metrics`, { headers: { authorization: 'Bearer ops-token-0123456789' } })).status).toBe(200);
      expect((await fetch(`${t.base}/dashboard/data?token=ops-token-0123456789`)).status).toBe(401);
      expect((await fetch(`${t.base}/dashboard/data`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
      expect((await fetch(`${t.base}/healthz`)).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('with METRICS_PORT they are served on that port only', async () => {
    const { freePort } = await import('./helpers/cluster.js');
    const opsPort = await freePort();
    const t = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1', METRICS_PORT: String(opsPort) });
    try {
      expect((await fetch(`${t.base}/metrics`)).status).toBe(404);
      expect((await fetch(`${t.base}/dashboard`)).status).toBe(404);
      const ops = await fetch(`http://127.0.0.1:${opsPort}/metrics`);
      expect(ops.status).toBe(200);
      expect(await ops.text()).toContain('jipjung_frames_received_total');
    } finally {
      await t.close();
    }
  });
});
