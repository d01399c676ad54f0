import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { scene } from './helpers/app.js';
import { freePort, Instance, Nginx, RedisServer, ResumingClient, type Msg } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

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
  /** Every client a test made, stopped after it. */
  const made: ResumingClient[] = [];
  const newClient = () => {
    const c = new ResumingClient(nginx.url, faces, 100);
    made.push(c);
    return c;
  };

  beforeAll(async () => {
    redisServer = new RedisServer(await freePort());
    await redisServer.start();
  });
  afterAll(async () => {
    await redisServer.stop();
    void redis;
  });

  async function startCluster(): Promise<void> {
    instances = [0, 1].map(() => new Instance({ REDIS_URL: redisServer.url, DRAIN_TIMEOUT_MS: '5000' }));
    await Promise.all(instances.map((i) => i.start()));
    nginx = new Nginx(await freePort(), instances.map((i) => i.port));
    await nginx.start();
  }

  afterEach(async () => {
    // A failed test leaves its clients reconnecting; they go first, so that nothing holds nginx open.
    for (const c of made.splice(0)) c.stop();
    await nginx?.stop();
    await Promise.all(instances.map((i) => i.stop()));
  });

  /** Until the latest store event both instances logged is `event`. */
  const storeEvent = (event: 'store_up' | 'store_down') => {
    const storeEvents = (i: Instance) => i.logs.filter((l) => l.event === 'store_up' || l.event === 'store_down').map((l) => l.event as string);
    return waitFor(() => instances.every((i) => storeEvents(i).at(-1) === event), {
      what: `${event} on both instances`,
      observed: () => instances.map(storeEvents),
    });
  };

  /** Until every client has had `n` results from the instance it is on. */
  const resultsFlowing = (clients: ResumingClient[], n: number) =>
    waitFor(() => clients.every((c) => c.received.length >= n), {
      what: `${n} results for every client`,
      observed: () => clients.map((c) => c.received.length),
    });

  /** The clients whose session was opened on `inst`. */
  const sessionsOn = (inst: Instance, clients: ResumingClient[]) => {
    const ids = new Set(inst.logs.filter((l) => l.event === 'session_open' && !l.resumed).map((l) => l.sessionId));
    return clients.filter((c) => ids.has(c.welcomes[0].sessionId));
  };

  /** Until each of `clients` is back on a resumed session and has a result made there. */
  const resumedElsewhere = (clients: ResumingClient[]) =>
    waitFor(() => clients.every((c) => c.resumedWithNewResult), {
      what: `${clients.length} clients to resume and get a new result`,
      observed: () => clients.map((c) => ({ welcomes: c.welcomes.length, lastResultId: c.lastResultId, closes: c.closes.map((x) => x.code) })),
    });

  async function streamThenFail(fail: (victim: Instance, moving: ResumingClient[]) => void | Promise<void>): Promise<{ clients: ResumingClient[]; victim: Instance }> {
    await startCluster();
    const clients = Array.from({ length: CLIENTS }, newClient);
    for (const c of clients) await c.connect();
    // least_conn spreads them over both instances.
    for (const inst of instances) expect(inst.logs.filter((l) => l.event === 'session_open').length).toBeGreaterThan(0);
    await resultsFlowing(clients, 2);
    const victim = instances[0];
    // With Redis, any instance answers for any session, with what its last checkpoint holds.
    const onVictim = victim.logs.find((l) => l.event === 'session_open')!.sessionId;
    const body = await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${instances[1].port}/v1/sessions/${onVictim}`);
        const json = res.status === 200 ? await res.json() : null;
        return json?.summary?.results > 0 && json;
      },
      { what: `a checkpoint of session ${onVictim} with results, read on the other instance` },
    );
    expect(body).toMatchObject({ sessionId: onVictim, state: 'elsewhere' });
    const moving = sessionsOn(victim, clients);
    expect(moving.length).toBeGreaterThan(0);
    await fail(victim, moving);
    await victim.exited;
    await resumedElsewhere(moving);
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
    const { clients, victim } = await streamThenFail(async (v, moving) => {
      // Killed while a client has frames past its last result, which no checkpoint covers. Killed right after a
      // result instead (as a wait for results tends to), it could hold none.
      await waitFor(() => moving.some((c) => c.sentPastResults >= 2), {
        what: 'frames past the last result for a client on the victim',
        observed: () => moving.map((c) => c.sentPastResults),
      });
      v.signal('SIGKILL');
    });
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
    const clients = Array.from({ length: 4 }, newClient);
    for (const c of clients) await c.connect();
    await resultsFlowing(clients, 2);
    await redisServer.stop();
    // Both instances notice, and say so in their logs.
    await storeEvent('store_down');
    // Results keep coming while Redis is away (it is back only when this test starts it).
    const before = clients.map((c) => c.received.length);
    await waitFor(() => clients.every((c, i) => c.received.length > before[i] + 3), {
      what: 'four more results for every client while Redis is stopped',
      observed: () => clients.map((c, i) => c.received.length - before[i]),
    });
    const degraded = await Promise.all(instances.map(async (i) => (await fetch(`${i.ops}/readyz`)).json()));
    for (const r of degraded) expect(r.store).toMatchObject({ kind: 'redis', healthy: false });
    for (const i of instances) {
      const text = await (await fetch(`${i.ops}/metrics`)).text();
      expect(text).toMatch(/^jipjung_session_store_up 0$/m);
    }

    await redisServer.start();
    await storeEvent('store_up');
    expect(await (await fetch(`${instances[1].ops}/metrics`)).text()).toMatch(/^jipjung_session_store_up 1$/m);
    // A resume on the other instance needs the state written since Redis came back (the restarted Redis
    // started empty): wait until the other instance reads a checkpoint of every session to be moved.
    const victim = instances[0];
    const moving = sessionsOn(victim, clients);
    expect(moving.length).toBeGreaterThan(0);
    await waitFor(
      async () => {
        for (const c of moving) {
          const res = await fetch(`http://127.0.0.1:${instances[1].port}/v1/sessions/${c.welcomes[0].sessionId}`);
          if (res.status !== 200) return false;
          await res.body?.cancel();
        }
        return true;
      },
      { what: 'checkpoints of the sessions on the victim in the restarted Redis' },
    );
    victim.signal('SIGKILL');
    await victim.exited;
    await resumedElsewhere(moving);
    const moved = clients.filter((c) => c.welcomes.length > 1);
    expect(moved.map((c) => clients.indexOf(c))).toEqual(moving.map((c) => clients.indexOf(c)));
    for (const c of moved) expect(c.welcomes.at(-1)).toMatchObject({ resumed: true, sessionId: c.welcomes[0].sessionId });
    const summaries = await Promise.all(clients.map((c) => c.finish()));
    clients.forEach((c, i) => expectWhole(c, summaries[i]));
  }, 60_000);
});
