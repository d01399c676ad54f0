import { isIPv6 } from 'node:net';

/**
 * The key the per-address limits count a client under, pure code: an IPv4
 * address itself, an IPv6 address's /64. One subscriber line or host gets
 * a /64 (or more) and may use any address in it, so per /128 a single
 * client could open connections without end. Expects an address as
 * `normaliseAddress` leaves it (IPv4-mapped IPv6 already IPv4); anything
 * else is its own key.
 */
export function limitKey(address: string): string {
  if (!isIPv6(address)) return address;
  const [head, tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  // An embedded IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) lies in the low 64 bits: the /64 does not need it.
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = address.includes('::') ? [...left, ...Array(8 - width(left) - width(right)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
