/**
 * The client address of a request that may have come through reverse
 * proxies, pure code (no sockets). X-Forwarded-For is written by whoever
 * sends the request, so a hop in it is believed only when the hop to its
 * right, the one that appended it, is a trusted proxy: the result is the
 * last (rightmost) hop not added by one of ours, and a client cannot pose
 * as another address by sending the header itself.
 */
import { BlockList, isIP } from 'node:net';

export interface TrustedProxies {
  has(address: string): boolean;
  readonly size: number;
}

const V4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * One address in canonical form, or null if it is not an IP address:
 * IPv4-mapped IPv6 becomes IPv4; a port (`1.2.3.4:80`, `[::1]:80`) and
 * IPv6 brackets are removed, as some proxies write them.
 */
export function normaliseAddress(raw: string): string | null {
  let a = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (bracketed) a = bracketed[1];
  else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'));
  const mapped = V4_MAPPED.exec(a);
  if (mapped) a = mapped[1];
  return isIP(a) ? a.toLowerCase() : null;
}

const entries = (list: string) =>
  list
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);

/** Why an entry of a TRUSTED_PROXIES list is not an IP address or CIDR range, or null if it is one. */
function entryProblem(entry: string): string | null {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return `${entry}: not an IP address or CIDR range`;
  if (slash >= 0) {
    const bits = entry.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `${entry}: prefix length must be 0 to ${max}`;
  }
  return null;
}

/** The invalid entries of a comma-separated TRUSTED_PROXIES list (empty when it is valid). */
export function trustedProxiesProblems(list: string): string[] {
  return entries(list)
    .map(entryProblem)
    .filter((p): p is string => p !== null);
}

/** Parse a comma-separated list of IP addresses and CIDR ranges (`10.0.0.1, 10.1.0.0/16, ::1`). Throws on an invalid entry. */
export function parseTrustedProxies(list: string | undefined): TrustedProxies {
  const problems = trustedProxiesProblems(list ?? '');
  if (problems.length > 0) throw new Error(`invalid trusted proxies: ${problems.join('; ')}`);
  const blocks = new BlockList();
  const items = entries(list ?? '');
  for (const entry of items) {
    const [address, bits] = entry.split('/');
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) blocks.addAddress(normaliseAddress(address) ?? address, family);
    else blocks.addSubnet(address, Number(bits), family);
  }
  return {
    size: items.length,
    has(address: string): boolean {
      const a = normaliseAddress(address);
      if (!a || items.length === 0) return false;
      return blocks.check(a, isIP(a) === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/**
 * The client address: `peer` (the socket's remote address) unless it is a
 * trusted proxy, in which case X-Forwarded-For is walked from the right
 * past further trusted proxies. A hop that is not an IP address ends the
 * walk at the trusted proxy before it: what lies beyond cannot be believed.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
  let client = peer === undefined ? null : normaliseAddress(peer);
  if (client === null) return peer ?? 'unknown';
  if (trusted.size === 0 || forwardedFor === undefined) return client;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  while (trusted.has(client) && hops.length > 0) {
    const next = normaliseAddress(hops.pop()!);
    if (next === null) break;
    client = next;
  }
  return client;
}
