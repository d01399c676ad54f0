import type { IncomingMessage } from 'node:http';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import {
  parseAllowedOrigins,
  refusalResponse,
  screenAddress,
  screenRequest,
  STREAM_PATH,
  UpgradeGate,
} from '../src/server/upgrade-gate.js';
import { createLogger } from '../src/utils/logger.js';

const NO_ORIGINS = new Set<string>();
const pass = { withinRate: true, open: 0, accepting: true };

describe('screenRequest', () => {
  it('refuses a target that is no URL with 400 and another path with 404', () => {
    expect(screenRequest({ path: null, origin: undefined }, NO_ORIGINS)?.status).toBe(400);
    expect(screenRequest({ path: '/v1/streams', origin: undefined }, NO_ORIGINS)?.status).toBe(404);
    expect(screenRequest({ path: '/', origin: undefined }, NO_ORIGINS)?.status).toBe(404);
    expect(screenRequest({ path: STREAM_PATH, origin: undefined }, NO_ORIGINS)).toBeNull();
  });

  it('allows any origin when none are listed, else only a listed one (403), a missing Origin included', () => {
    const allowed = new Set(['https://app.example']);
    expect(screenRequest({ path: STREAM_PATH, origin: 'https://evil.example' }, NO_ORIGINS)).toBeNull();
    expect(screenRequest({ path: STREAM_PATH, origin: 'https://app.example' }, allowed)).toBeNull();
    expect(screenRequest({ path: STREAM_PATH, origin: 'https://evil.example' }, allowed)?.status).toBe(403);
    expect(screenRequest({ path: STREAM_PATH, origin: undefined }, allowed)?.status).toBe(403);
  });

  it('answers a wrong path with 404 before looking at the origin', () => {
    expect(screenRequest({ path: '/other', origin: 'https://evil.example' }, new Set(['https://app.example']))?.status).toBe(404);
  });
});

describe('screenAddress', () => {
  it('refuses an address past its upgrade rate or at its open connections with 429', () => {
    expect(screenAddress({ ...pass, withinRate: false }, 2)?.status).toBe(429);
    expect(screenAddress({ ...pass, open: 2 }, 2)?.status).toBe(429);
    expect(screenAddress({ ...pass, open: 1 }, 2)).toBeNull();
  });

  it('refuses with 503 while the instance takes nobody, after the address limits', () => {
    expect(screenAddress({ ...pass, accepting: false }, 2)?.status).toBe(503);
    expect(screenAddress({ withinRate: false, open: 0, accepting: false }, 2)?.status).toBe(429);
  });
});

describe('refusalResponse', () => {
  it('is a bodiless HTTP/1.1 answer that closes the connection, with Retry-After where one is due', () => {
    expect(refusalResponse(screenRequest({ path: '/x', origin: undefined }, NO_ORIGINS)!)).toBe(
      'HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
    );
    expect(refusalResponse(screenAddress({ ...pass, open: 9 }, 1)!)).toBe(
      'HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 10\r\nContent-Length: 0\r\n\r\n',
    );
    expect(refusalResponse(screenAddress({ ...pass, accepting: false }, 1)!)).toBe(
      'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n',
    );
  });
});

describe('parseAllowedOrigins', () => {
  it('splits the comma list, trimming and skipping empty entries', () => {
    expect([...parseAllowedOrigins(' https://a.example , ,https://b.example,')]).toEqual(['https://a.example', 'https://b.example']);
    expect(parseAllowedOrigins('').size).toBe(0);
  });
});

/** A request as node:http hands it to an upgrade listener, reduced to what the gate reads. */
const request = (address: string, opts: { url?: string; origin?: string } = {}) =>
  ({ url: opts.url ?? STREAM_PATH, headers: opts.origin ? { origin: opts.origin } : {}, socket: { remoteAddress: address } }) as unknown as IncomingMessage;

/** The raw socket of an upgrade: only what was written before it was ended matters. */
class FakeSocket {
  written: string | null = null;
  end(data: string): void {
    this.written = data;
  }
}

const gates: UpgradeGate[] = [];
afterEach(() => {
  for (const g of gates.splice(0)) g.close();
  vi.useRealTimers();
});

function gate(env: Record<string, string>, opts: { accepting?: () => boolean } = {}) {
  const config = loadConfig({ HEARTBEAT_INTERVAL_MS: '15000', ...env });
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line)) });
  let now = 1_000_000;
  const g = new UpgradeGate({
    config,
    logger,
    clientAddress: (req) => req.socket.remoteAddress!,
    accepting: opts.accepting ?? (() => true),
    now: () => now,
  });
  gates.push(g);
  const admit = (address: string, o?: { url?: string; origin?: string }) => {
    const socket = new FakeSocket();
    const key = g.admit(request(address, o), socket);
    return { key, status: key === null ? Number(socket.written!.split(' ')[1]) : 101 };
  };
  return { g, logs, admit, advance: (ms: number) => (now += ms) };
}

describe('UpgradeGate', () => {
  it('admits a request under its limit key: an IPv6 address counts as its /64', () => {
    const { admit } = gate({});
    expect(admit('203.0.113.7')).toEqual({ key: '203.0.113.7', status: 101 });
    expect(admit('2001:db8:1:2::a')).toEqual({ key: '2001:db8:1:2::/64', status: 101 });
  });

  it('rate-limits upgrades per address, a burst of a tenth of the minute, logging each 429', () => {
    const { admit, logs, advance } = gate({ UPGRADES_PER_IP_PER_MINUTE: '30' });
    const statuses = [1, 2, 3, 4, 5].map((i) => admit(`2001:db8:9:9::${i}`).status);
    expect(statuses).toEqual([101, 101, 101, 429, 429]);
    // Another address has its own rate.
    expect(admit('203.0.113.8').status).toBe(101);
    expect(logs.filter((l) => l.event === 'upgrade_refused')).toEqual([
      expect.objectContaining({ remoteAddress: '2001:db8:9:9::4', status: 429 }),
      expect.objectContaining({ remoteAddress: '2001:db8:9:9::5', status: 429 }),
    ]);
    // 30 a minute: one more after 2 s.
    advance(2000);
    expect(admit('2001:db8:9:9::6').status).toBe(101);
    expect(admit('2001:db8:9:9::7').status).toBe(429);
  });

  it('spends no rate on a request refused for its path or origin', () => {
    const { admit } = gate({ UPGRADES_PER_IP_PER_MINUTE: '10', ALLOWED_ORIGINS: 'https://app.example' });
    for (let i = 0; i < 5; i++) expect(admit('203.0.113.9', { url: '/nope', origin: 'https://app.example' }).status).toBe(404);
    for (let i = 0; i < 5; i++) expect(admit('203.0.113.9', { origin: 'https://evil.example' }).status).toBe(403);
    expect(admit('203.0.113.9', { url: '//', origin: 'https://app.example' }).status).toBe(400);
    expect(admit('203.0.113.9', { origin: 'https://app.example' }).status).toBe(101);
    expect(admit('203.0.113.9', { origin: 'https://app.example' }).status).toBe(429);
  });

  it('counts open WebSockets per address until they close', () => {
    const { g, admit } = gate({ MAX_CONNECTIONS_PER_IP: '2', UPGRADES_PER_IP_PER_MINUTE: '600' });
    const sockets = [new EventEmitter(), new EventEmitter()];
    for (const ws of sockets) g.track(admit('2001:db8:1:2::a').key!, ws);
    expect(g.openFrom('2001:db8:1:2::/64')).toBe(2);
    expect(admit('2001:db8:1:2:ffff::c').status).toBe(429);
    expect(admit('2001:db8:1:3::a').status).toBe(101);
    sockets[0].emit('close');
    expect(g.openFrom('2001:db8:1:2::/64')).toBe(1);
    expect(admit('2001:db8:1:2::b').status).toBe(101);
    sockets[1].emit('close');
    expect(g.openFrom('2001:db8:1:2::/64')).toBe(0);
  });

  it('answers 503 while the instance takes nobody, without a log line', () => {
    let accepting = false;
    const { admit, logs } = gate({}, { accepting: () => accepting });
    expect(admit('203.0.113.10').status).toBe(503);
    accepting = true;
    expect(admit('203.0.113.10').status).toBe(101);
    expect(logs.filter((l) => l.event === 'upgrade_refused')).toEqual([]);
  });

  it('forgets the upgrade rate of an address with no connection open, at every heartbeat interval', () => {
    vi.useFakeTimers();
    // One upgrade a minute, a burst of one: the next comes a minute later unless the address is forgotten.
    const { g, admit } = gate({ UPGRADES_PER_IP_PER_MINUTE: '1', HEARTBEAT_INTERVAL_MS: '15000' });
    expect(admit('203.0.113.11').status).toBe(101);
    const held = new EventEmitter();
    g.track(admit('203.0.113.12').key!, held);
    expect(admit('203.0.113.11').status).toBe(429);
    expect(admit('203.0.113.12').status).toBe(429);
    vi.advanceTimersByTime(15_000);
    // The gate's own clock did not move: only forgetting gives the quiet address its burst back.
    expect(admit('203.0.113.11').status).toBe(101);
    expect(admit('203.0.113.12').status).toBe(429);
  });
});
