import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.js';
import { clientAddress, normaliseAddress, parseTrustedProxies, trustedProxiesProblems } from '../src/utils/forwarded.js';

const none = parseTrustedProxies('');
const lb = parseTrustedProxies('127.0.0.1');
const chain = parseTrustedProxies('127.0.0.1, 10.0.0.0/8, 2001:db8::/32');

describe('client address behind proxies (X-Forwarded-For)', () => {
  it('is the peer when no proxy is trusted, whatever the header says', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7', none)).toBe('127.0.0.1');
    expect(clientAddress('198.51.100.9', undefined, none)).toBe('198.51.100.9');
  });

  it('ignores the header of a peer that is not a trusted proxy (a client posing as another address)', () => {
    expect(clientAddress('198.51.100.9', '203.0.113.7', lb)).toBe('198.51.100.9');
  });

  it('takes the last hop not added by a trusted proxy', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7', lb)).toBe('203.0.113.7');
    // The client wrote 192.0.2.1 itself; the trusted proxy appended the address it saw.
    expect(clientAddress('127.0.0.1', '192.0.2.1, 203.0.113.7', lb)).toBe('203.0.113.7');
    // Two of our proxies in a row, then the client.
    expect(clientAddress('127.0.0.1', '192.0.2.1, 203.0.113.7, 10.1.2.3', chain)).toBe('203.0.113.7');
    // Headers repeated are one list.
    expect(clientAddress('127.0.0.1', ['192.0.2.1', '203.0.113.7, 10.1.2.3'], chain)).toBe('203.0.113.7');
  });

  it('is the furthest hop when every hop is trusted', () => {
    expect(clientAddress('127.0.0.1', '10.0.0.1, 10.0.0.2', chain)).toBe('10.0.0.1');
  });

  it('stops at a hop that is not an address: what lies beyond cannot be believed', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7, unknown, 10.0.0.5', chain)).toBe('10.0.0.5');
    expect(clientAddress('127.0.0.1', '', lb)).toBe('127.0.0.1');
  });

  it('reads IPv4-mapped IPv6, ports and brackets as proxies write them', () => {
    expect(clientAddress('::ffff:127.0.0.1', '203.0.113.7:51234', lb)).toBe('203.0.113.7');
    expect(clientAddress('2001:db8::10', '[2001:DB8:1::7]:443', chain)).toBe('2001:db8:1::7');
    expect(normaliseAddress('::FFFF:10.0.0.1')).toBe('10.0.0.1');
    expect(normaliseAddress('::1')).toBe('::1');
    expect(normaliseAddress('example.com')).toBeNull();
    expect(normaliseAddress('1.2.3')).toBeNull();
  });

  it('is "unknown" without a peer address (socket already gone)', () => {
    expect(clientAddress(undefined, '203.0.113.7', lb)).toBe('unknown');
  });
});

describe('TRUSTED_PROXIES', () => {
  it('accepts addresses and CIDR ranges of both families', () => {
    expect(trustedProxiesProblems(' 10.0.0.1 ,10.1.0.0/16, ::1, fd00::/8 ')).toEqual([]);
    expect(chain.has('10.200.3.4')).toBe(true);
    expect(chain.has('11.0.0.1')).toBe(false);
    expect(chain.has('::ffff:127.0.0.1')).toBe(true);
    expect(none.size).toBe(0);
  });

  it('reports every bad entry, and the configuration refuses them', () => {
    expect(trustedProxiesProblems('nope, 10.0.0.0/33, 1.2.3.4, ::1/129')).toHaveLength(3);
    expect(() => parseTrustedProxies('10.0.0.0/x')).toThrow(/prefix length/);
    try {
      loadConfig({ TRUSTED_PROXIES: 'proxy.internal, 10.0.0.1' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual(['TRUSTED_PROXIES: proxy.internal: not an IP address or CIDR range']);
    }
    expect(loadConfig({ TRUSTED_PROXIES: '10.0.0.1, 10.2.0.0/16' }).TRUSTED_PROXIES).toBe('10.0.0.1, 10.2.0.0/16');
  });
});
