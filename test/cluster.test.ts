import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { scene } from './helpers/app.js';
import { freePort, Instance, Nginx, RedisServer, ResumingClient, type Msg } from './helpers/cluster.js';

const CLIENTS = 20;
const faces = scene('face');

/** Checks that hold for every client after a failover. */
function expectWhole(c: ResumingClient, summary: Msg): void {
  // The union of results has contiguous resultIds from 1 ...
  const ids = c.resultIds();
  expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
  expect(ids.length).toBe(summary.results);
  // ... and a resultId received twice is the same result both times.
  const byId = new Map<number, Msg>();
  for (const r of c.received) {
    const seen = byId.get(r.resultId);
    if (seen) expect([seen.kind, seen.seqFrom, seen.seqTo]).toEqual([r.kind, r.seqFrom, r.seqTo]);
    else byId.set(r.resultId, r);
  }
  // Every frame the client sent ended analysed, rejected, dropped, or counted lost.
  expect(summary.framesAnalyzed + summary.framesRejected + summary.framesDropped + summary.framesLost, JSON.stringify({ summary, closes: c.closes, welcomes: c.welcomes.length, ids: c.resultIds().length, received: c.received.map((r) => [r.resultId, r.seqFrom, r.seqTo, r.framesAnalyzed, r.counts?.lost]) })).toBe(c.sent);
}

describe('two instances behind nginx with sessions in Redis', () => {
  const redis = new RedisServer(0);
  let instances: Instance[] = [];
  let nginx: Nginx;
  let redisServer: RedisServer;

  beforeAll(async () => {
    redisServer = new RedisServer(await freePort());
    await redisServer.start();
  });
  afterAll(async () => {
    await redisServer.stop();
    void redis;
  });

  async function startCluster(): Promise<void> {
    const ports = [await freePort(), await freePort()];
    instances = ports.map((port) => new Instance(port, { REDIS_URL: redisServer.url, DRAIN_TIMEOUT_MS: '5000' }));
    await Promise.all(instances.map((i) => i.start()));
    nginx = new Nginx(await freePort(), ports);
    await nginx.start();
  }

  afterEach(async () => {
    await nginx?.stop();
    await Promise.all(instances.map((i) => i.stop()));
  });

  async function streamThenFail(fail: (victim: Instance) => void): Promise<{ clients: ResumingClient[]; victim: Instance }> {
    await startCluster();
    const clients = Array.from({ length: CLIENTS }, () => new ResumingClient(nginx.url, faces, 100));
    for (const c of clients) await c.connect();
    // least_conn spreads them over both instances.
    for (const inst of instances) expect(inst.logs.filter((l) => l.event === 'session_open').length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 2500));
    const victim = instances[0];
    // With Redis, any instance answers for any session.
    const onVictim = victim.logs.find((l) => l.event === 'session_open')!.sessionId;
    const res = await fetch(`http://127.0.0.1:${instances[1].port}/v1/sessions/${onVictim}`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ sessionId: onVictim, state: 'elsewhere' });
    expect(body.summary.results).toBeGreaterThan(0);
    fail(victim);
    await new Promise((r) => setTimeout(r, 4000));
    return { clients, victim };
  }

  it('SIGTERM: every client gets 1012, resumes on the other instance through nginx, and loses nothing', async () => {
    const { clients, victim } = await streamThenFail((v) => v.signal('SIGTERM'));
    expect(await victim.exited).toBe(0);
    const moved = clients.filter((c) => c.closes.some((x) => x.code === 1012));
    expect(moved.length).toBeGreaterThan(0);
    expect(moved.length).toBe(victim.logs.filter((l) => l.event === 'session_open').length);
    for (const c of moved) {
      const reason = JSON.parse(c.closes.find((x) => x.code === 1012)!.reason);
      expect(reason).toMatchObject({ reason: 'restart', retryAfterMs: expect.any(Number) });
      expect(c.welcomes.at(-1)).toMatchObject({ resumed: true, sessionId: c.welcomes[0].sessionId });
    }
    const summaries = await Promise.all(clients.map((c) => c.finish()));
    clients.forEach((c, i) => expectWhole(c, summaries[i]));
    // Graceful: at most the frames that arrived while the drain was closing the sockets are lost.
    for (const [i, c] of moved.entries()) expect(summaries[clients.indexOf(c)].framesLost, `client ${i}`).toBeLessThanOrEqual(5);
  }, 60_000);

  it('SIGKILL: clients resume on the other instance; frames in flight on the dead one are counted lost', async () => {
    const { clients, victim } = await streamThenFail((v) => v.signal('SIGKILL'));
    await victim.exited;
    const moved = clients.filter((c) => c.welcomes.length > 1);
    expect(moved.length).toBeGreaterThan(0);
    for (const c of moved) expect(c.welcomes.at(-1)).toMatchObject({ resumed: true, sessionId: c.welcomes[0].sessionId });
    const summaries = await Promise.all(clients.map((c) => c.finish()));
    clients.forEach((c, i) => expectWhole(c, summaries[i]));
    const lost = moved.map((c) => summaries[clients.indexOf(c)].framesLost);
    // Whatever the dead instance held after its last checkpoint, and nothing else: a second or so.
    for (const n of lost) expect(n).toBeLessThanOrEqual(20);
    expect(lost.some((n) => n > 0)).toBe(true);
  }, 60_000);

  it('Redis stopped for a few seconds: sessions keep getting results; after it returns a resume works again', async () => {
    await startCluster();
    const clients = Array.from({ length: 4 }, () => new ResumingClient(nginx.url, faces, 100));
    for (const c of clients) await c.connect();
    await new Promise((r) => setTimeout(r, 1500));
    await redisServer.stop();
    const before = clients.map((c) => c.received.length);
    await new Promise((r) => setTimeout(r, 3000));
    // Results kept coming while Redis was away.
    clients.forEach((c, i) => expect(c.received.length).toBeGreaterThan(before[i] + 3));
    const degraded = await Promise.all(instances.map(async (i) => (await fetch(`http://127.0.0.1:${i.port}/readyz`)).json()));
    for (const r of degraded) expect(r.store).toMatchObject({ kind: 'redis', healthy: false });
    for (const i of instances) expect(i.logs.some((l) => l.event === 'store_down')).toBe(true);
    for (const i of instances) {
      const text = await (await fetch(`http://127.0.0.1:${i.port}/metrics`)).text();
      expect(text).toMatch(/^jipjung_session_store_up 0$/m);
    }

    await redisServer.start();
    await new Promise((r) => setTimeout(r, 2000));
    for (const i of instances) expect(i.logs.some((l) => l.event === 'store_up')).toBe(true);
    expect(await (await fetch(`http://127.0.0.1:${instances[1].port}/metrics`)).text()).toMatch(/^jipjung_session_store_up 1$/m);
    // A resume on the other instance needs the state written since Redis came back.
    const victim = instances[0];
    victim.signal('SIGKILL');
    await victim.exited;
    await new Promise((r) => setTimeout(r, 3000));
    const moved = clients.filter((c) => c.welcomes.length > 1);
    expect(moved.length).toBeGreaterThan(0);
    for (const c of moved) expect(c.welcomes.at(-1)).toMatchObject({ resumed: true, sessionId: c.welcomes[0].sessionId });
    const summaries = await Promise.all(clients.map((c) => c.finish()));
    clients.forEach((c, i) => expectWhole(c, summaries[i]));
  }, 60_000);
});
