import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/config.js';
import { RateLimiter } from '../handler/rate-limiter.js';
import type { Logger } from '../utils/logger.js';
import { requestUrl } from './http-server.js';
import { limitKey } from './limit-key.js';

export const STREAM_PATH = '/v1/stream';

/** The HTTP answer that refuses an upgrade; the socket is closed after it. */
export interface Refusal {
  status: 400 | 403 | 404 | 429 | 503;
  text: string;
  headers: Readonly<Record<string, string>>;
}

const BAD_TARGET: Refusal = { status: 400, text: 'Bad Request', headers: {} };
const NOT_FOUND: Refusal = { status: 404, text: 'Not Found', headers: {} };
const FORBIDDEN: Refusal = { status: 403, text: 'Forbidden', headers: {} };
const TOO_MANY: Refusal = { status: 429, text: 'Too Many Requests', headers: { 'Retry-After': '10' } };
const UNAVAILABLE: Refusal = { status: 503, text: 'Service Unavailable', headers: { 'Retry-After': '5' } };

/** What an upgrade request says of itself. */
export interface RequestFacts {
  /** The request target's path; null when the target is no URL. */
  path: string | null;
  origin: string | undefined;
}

/** What is known of the sender's address and of this instance once the request itself passed. */
export interface AddressFacts {
  /** Whether the address's upgrade rate had room for this one. */
  withinRate: boolean;
  /** WebSockets open from the address (its limit key) now. */
  open: number;
  /** Whether this instance takes new connections (workers ready, not draining). */
  accepting: boolean;
}

/**
 * Pure: the refusal a request earns whoever sends it, or null. An empty
 * `allowedOrigins` allows any origin; otherwise the Origin must be one of
 * them, as a page of another site could otherwise open a stream with the
 * user's credentials (cross-site WebSocket hijacking).
 */
export function screenRequest(req: RequestFacts, allowedOrigins: ReadonlySet<string>): Refusal | null {
  if (req.path === null) return BAD_TARGET;
  if (req.path !== STREAM_PATH) return NOT_FOUND;
  if (allowedOrigins.size > 0 && !allowedOrigins.has(req.origin ?? '')) return FORBIDDEN;
  return null;
}

/** Pure: the refusal of an address over its limits (floods), or of an instance that takes nobody now, or null. */
export function screenAddress(facts: AddressFacts, maxPerAddress: number): Refusal | null {
  if (!facts.withinRate || facts.open >= maxPerAddress) return TOO_MANY;
  if (!facts.accepting) return UNAVAILABLE;
  return null;
}

/** Pure: the bytes of a refusal on the wire. */
export function refusalResponse(r: Refusal): string {
  const headers = Object.entries(r.headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return `HTTP/1.1 ${r.status} ${r.text}\r\nConnection: close\r\n${headers}Content-Length: 0\r\n\r\n`;
}

export const parseAllowedOrigins = (list: string): Set<string> =>
  new Set(
    list
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
  );

export interface UpgradeGateDeps {
  config: Pick<Config, 'ALLOWED_ORIGINS' | 'MAX_CONNECTIONS_PER_IP' | 'UPGRADES_PER_IP_PER_MINUTE' | 'HEARTBEAT_INTERVAL_MS'>;
  logger: Logger;
  clientAddress: (req: IncomingMessage) => string;
  /** Whether upgrades are accepted right now (workers ready, not draining). */
  accepting: () => boolean;
  now?: () => number;
}

/**
 * What is refused before a WebSocket exists: a wrong path or origin, an
 * address (IPv4, or an IPv6 /64) past its upgrade rate or its open
 * connections, an instance that takes nobody now. Holds the per-address
 * state; the decisions are the pure functions above.
 */
export class UpgradeGate {
  private readonly allowedOrigins: Set<string>;
  /** Open connections by limit key. */
  private readonly perAddress = new Map<string, number>();
  private upgradeLimiters = new Map<string, RateLimiter>();
  private readonly forgetTimer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly deps: UpgradeGateDeps) {
    this.allowedOrigins = parseAllowedOrigins(deps.config.ALLOWED_ORIGINS);
    this.now = deps.now ?? Date.now;
    // Upgrade limiters of quiet addresses are forgotten, so the map stays small.
    this.forgetTimer = setInterval(() => this.forgetQuiet(), deps.config.HEARTBEAT_INTERVAL_MS);
    this.forgetTimer.unref();
  }

  /**
   * Refuses `req` on its socket with an HTTP answer (null), or admits it:
   * the limit key to `track` its WebSocket under.
   */
  admit(req: IncomingMessage, socket: { end(data: string): unknown }): string | null {
    const url = requestUrl(req);
    const refused = screenRequest({ path: url ? url.pathname : null, origin: req.headers.origin }, this.allowedOrigins);
    if (refused) {
      socket.end(refusalResponse(refused));
      return null;
    }
    const address = this.deps.clientAddress(req);
    const key = limitKey(address);
    // Taken only once the request itself passed: a refused request spends none of its address's rate.
    const withinRate = this.upgradeRate(key).take(this.now());
    const verdict = screenAddress({ withinRate, open: this.perAddress.get(key) ?? 0, accepting: this.deps.accepting() }, this.deps.config.MAX_CONNECTIONS_PER_IP);
    if (verdict) {
      if (verdict.status === 429) {
        this.deps.logger.info({ event: 'upgrade_refused', remoteAddress: address, status: 429 }, 'too many connections from one address');
      }
      socket.end(refusalResponse(verdict));
      return null;
    }
    return key;
  }

  /** An admitted upgrade's WebSocket: counted under `key` until it closes. */
  track(key: string, ws: { once(event: 'close', listener: () => void): unknown }): void {
    this.perAddress.set(key, (this.perAddress.get(key) ?? 0) + 1);
    ws.once('close', () => {
      const n = (this.perAddress.get(key) ?? 1) - 1;
      if (n > 0) this.perAddress.set(key, n);
      else this.perAddress.delete(key);
    });
  }

  /** Connections open from `key` now. */
  openFrom(key: string): number {
    return this.perAddress.get(key) ?? 0;
  }

  close(): void {
    clearInterval(this.forgetTimer);
  }

  private forgetQuiet(): void {
    this.upgradeLimiters = new Map([...this.upgradeLimiters].filter(([key]) => this.perAddress.has(key)));
  }

  private upgradeRate(key: string): RateLimiter {
    let limiter = this.upgradeLimiters.get(key);
    if (!limiter) {
      const perMinute = this.deps.config.UPGRADES_PER_IP_PER_MINUTE;
      limiter = new RateLimiter(perMinute / 60, Math.max(1, Math.ceil(perMinute / 10)));
      this.upgradeLimiters.set(key, limiter);
    }
    return limiter;
  }
}
