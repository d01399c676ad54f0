/**
 * The per-address limits (MAX_CONNECTIONS_PER_IP, UPGRADES_PER_IP_PER_MINUTE)
 * hold an IPv6 client to its /64: one subscriber line gets a /64 (or more)
 * and picks any address in it, so a limit per /128 would be no limit.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitKey } from '../src/server/limit-key.js';
import { startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { waitFor } from './helpers/wait.js';

describe('limitKey', () => {
  it('is the /64 of an IPv6 address, in one spelling whatever the input', () => {
    expect(limitKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(limitKey('2001:0DB8:0001:0002:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(limitKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(limitKey('::1')).toBe('0:0:0:0::/64');
    expect(limitKey('fe80::1:2:3:4')).toBe('fe80:0:0:0::/64');
  });

  it('is the address itself for IPv4, and anything else unchanged', () => {
    expect(limitKey('203.0.113.7')).toBe('203.0.113.7');
    expect(limitKey('unknown')).toBe('unknown');
  });
});

/** The HTTP status an upgrade request gets (101 when it opens), and the socket if open. */
function upgrade(url: string, forwardedFor: string): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { 'x-forwarded-for': forwardedFor } });
    ws.on('open', () => resolve({ status: 101, ws }));
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.on('error', () => {});
  });
}

describe('per-address limits behind a proxy', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      ...BRIGHTNESS_MODEL,
      WORKERS: '1',
      TRUSTED_PROXIES: '127.0.0.1',
      MAX_CONNECTIONS_PER_IP: '2',
      UPGRADES_PER_IP_PER_MINUTE: '30',
    });
  });
  afterAll(() => t.close());

  it('count every address of one IPv6 /64 together, and another /64 apart', async () => {
    const a = await upgrade(t.url, '2001:db8:1:2::a');
    const b = await upgrade(t.url, '2001:db8:1:2::b');
    expect([a.status, b.status]).toEqual([101, 101]);
    expect((await upgrade(t.url, '2001:db8:1:2:ffff:ffff:ffff:c')).status).toBe(429);
    const other = await upgrade(t.url, '2001:db8:1:3::a');
    expect(other.status).toBe(101);
    for (const s of [a, b, other]) s.ws?.close();
    await waitFor(() => t.app.stream.connections === 0, { what: 'the connections to close' });
  });

  it('rate-limit upgrades per /64: a burst of a tenth of the minute, then 429', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const r = await upgrade(t.url, `2001:db8:9:9::${i}`);
      statuses.push(r.status);
      r.ws?.close();
      // Closed on the server too, so that only the rate limit can refuse the next one.
      await waitFor(() => t.app.stream.connections === 0, { what: 'the connection to close' });
    }
    expect(statuses).toEqual([101, 101, 101, 429, 429]);
  });
});
