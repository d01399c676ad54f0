import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from '../utils/logger.js';
import type { WindowResultMessage } from '../protocol/server-messages.js';
import { checkSessionRecord, type SessionRecord } from '../protocol/session-record.js';
import { WINDOWS_KEPT } from './session.js';

export { SESSION_RECORD_VERSION, type SessionRecord } from '../protocol/session-record.js';

export interface StoreStatus {
  kind: 'memory' | 'redis';
  healthy: boolean;
  /** Records waiting to be written because the store is unreachable. */
  pending: number;
}

/**
 * Session state behind one interface. `save` never blocks the frame path:
 * it hands the record over and returns; a store that cannot write keeps the
 * latest record of each session and writes it when it can. Emits
 * `takeover` (sessionId) when another instance resumed a session.
 */
export interface SessionStore extends EventEmitter {
  readonly kind: 'memory' | 'redis';
  status(): StoreStatus;
  save(record: SessionRecord): void;
  /** The session's record, or null: none, expired, or one that fails its check (src/protocol/session-record.ts). */
  load(id: string): Promise<SessionRecord | null>;
  /** Tell the other instances that this one now holds the session. */
  announceTakeover(id: string): void;
  /** Write everything pending, for at most `timeoutMs`. */
  flush(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Sessions whose unreadable record was already reported: enough to keep a retrying client from filling the log. */
const REFUSED_REMEMBERED = 1000;

/**
 * Checks what a store read before a session goes on from it. A record that
 * fails (another version, corrupt) is no record: the client gets a new
 * session rather than one resumed from garbage. Each session's refusal is
 * logged once, however often its client asks for it again.
 */
class RecordGate {
  private readonly reported = new Set<string>();

  constructor(
    private readonly store: 'memory' | 'redis',
    private readonly logger: Logger | undefined,
  ) {}

  pass(id: string, value: unknown): SessionRecord | null {
    const checked = checkSessionRecord(value);
    if (checked.ok && checked.record.id === id) return checked.record;
    this.refuse(id, checked.ok ? 'the record is of another session' : checked.reason);
    return null;
  }

  refuse(id: string, reason: string): void {
    if (this.reported.has(id)) return;
    this.reported.add(id);
    if (this.reported.size > REFUSED_REMEMBERED) this.reported.delete(this.reported.values().next().value!);
    this.logger?.warn({ event: 'session_record_refused', store: this.store, sessionId: id, reason }, 'stored session record ignored: the session cannot be resumed from it');
  }
}

/** The embedded store: one instance, records in memory with a TTL. */
export class MemorySessionStore extends EventEmitter implements SessionStore {
  readonly kind = 'memory' as const;
  private readonly records = new Map<string, SessionRecord>();
  private readonly gate: RecordGate;

  /** Records are checked here too, so that a session that would not resume from Redis does not resume from memory either. */
  constructor(
    private readonly ttlMs: number,
    logger?: Logger,
  ) {
    super();
    this.gate = new RecordGate('memory', logger);
  }

  status(): StoreStatus {
    return { kind: this.kind, healthy: true, pending: 0 };
  }

  save(record: SessionRecord): void {
    this.records.delete(record.id); // re-insert: the map stays ordered by last update
    this.records.set(record.id, record);
    const now = Date.now();
    for (const [id, r] of this.records) {
      if (now - r.updatedAt < this.ttlMs) break;
      this.records.delete(id);
    }
  }

  async load(id: string): Promise<SessionRecord | null> {
    const r = this.records.get(id);
    return r && Date.now() - r.updatedAt < this.ttlMs ? this.gate.pass(id, r) : null;
  }

  announceTakeover(): void {}

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.records.clear();
  }
}

const KEY_PREFIX = 'jipjung:session:';
const WINDOWS_PREFIX = 'jipjung:windows:';
const TAKEOVER_CHANNEL = 'jipjung:takeover';
/** How often pending records are retried while Redis is away. */
const RETRY_INTERVAL_MS = 500;

/** The decoded value, or undefined for text that is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Window results in resultId order, each once (two instances may both have appended one). */
function uniqueWindows(windows: WindowResultMessage[]): WindowResultMessage[] {
  const out: WindowResultMessage[] = [];
  let last = -Infinity;
  for (const w of windows) {
    if (w.resultId > last) {
      out.push(w);
      last = w.resultId;
    }
  }
  return out.slice(-WINDOWS_KEPT);
}

/**
 * Redis-backed store shared by every instance: per session one JSON value
 * (the record without its window history) and a list of window results
 * (appended as they come, trimmed to the last WINDOWS_KEPT), both with a
 * TTL, and a pub/sub channel for takeovers. A checkpoint after every unit
 * thus costs the same at the end of an hour as at its start, instead of
 * re-writing up to an hour of windows each time. Commands never queue while
 * Redis is unreachable (they fail at once); the latest record of each
 * session waits in `pending` and is written when Redis returns.
 */
export class RedisSessionStore extends EventEmitter implements SessionStore {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly pending = new Map<string, SessionRecord>();
  private readonly writing = new Set<string>();
  /** Per session, the last window resultId in Redis's list, and when it was written (to forget it). */
  private readonly windowsWritten = new Map<string, { resultId: number; at: number }>();
  private readonly timer: NodeJS.Timeout;
  private healthy = false;
  private readonly gate: RecordGate;

  constructor(
    url: string,
    private readonly ttlMs: number,
    private readonly instanceId: string,
    private readonly logger: Logger,
  ) {
    super();
    this.gate = new RecordGate('redis', logger);
    const options = {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
    };
    this.redis = new Redis(url, options);
    this.sub = new Redis(url, { ...options, enableOfflineQueue: true });
    this.redis.on('ready', () => this.setHealthy(true));
    for (const event of ['close', 'end'] as const) this.redis.on(event, () => this.setHealthy(false));
    this.redis.on('error', () => {}); // state changes are logged by setHealthy
    this.sub.on('error', () => {});
    this.sub.subscribe(TAKEOVER_CHANNEL).catch(() => {});
    this.sub.on('message', (_channel: string, message: string) => {
      try {
        const { sessionId, instanceId } = JSON.parse(message) as { sessionId: string; instanceId: string };
        if (instanceId !== this.instanceId) {
          this.windowsWritten.delete(sessionId); // the other instance appends from now on
          this.emit('takeover', sessionId);
        }
      } catch {
        /* not ours */
      }
    });
    this.timer = setInterval(() => this.writePending(), RETRY_INTERVAL_MS);
    this.timer.unref();
  }

  /** Resolves once Redis answered, or after `timeoutMs` (the instance starts degraded). */
  async ready(timeoutMs: number): Promise<void> {
    if (this.healthy) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.redis.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  status(): StoreStatus {
    return { kind: this.kind, healthy: this.healthy, pending: this.pending.size };
  }

  save(record: SessionRecord): void {
    this.pending.set(record.id, record);
    if (this.healthy) this.write(record.id);
  }

  async load(id: string): Promise<SessionRecord | null> {
    const waiting = this.pending.get(id);
    if (waiting) return waiting;
    if (!this.healthy) return null;
    let raw: string | null;
    let list: string[];
    try {
      [[, raw], [, list]] = (await this.redis
        .multi()
        .get(KEY_PREFIX + id)
        .lrange(WINDOWS_PREFIX + id, 0, -1)
        .exec()) as [[Error | null, string | null], [Error | null, string[]]];
    } catch {
      return null; // Redis did not answer: the health events report that, not every load
    }
    if (!raw) return null;
    const value = parseJson(raw);
    if (value === undefined) {
      this.gate.refuse(id, 'the record is not JSON');
      return null;
    }
    const windows: unknown[] = [];
    for (const [i, w] of (list ?? []).entries()) {
      const window = parseJson(w);
      if (window === undefined) {
        this.gate.refuse(id, `window ${i} of ${list.length} is not JSON`);
        return null;
      }
      windows.push(window);
    }
    // The window history is kept beside the record (see the class comment): checked as part of it.
    const whole = typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...value, windows } : value;
    const record = this.gate.pass(id, whole);
    if (!record) return null;
    record.windows = uniqueWindows(record.windows);
    const lastWindow = record.windows.at(-1);
    this.windowsWritten.set(id, { resultId: lastWindow?.resultId ?? -1, at: Date.now() });
    return record;
  }

  announceTakeover(id: string): void {
    if (!this.healthy) return;
    this.redis.publish(TAKEOVER_CHANNEL, JSON.stringify({ sessionId: id, instanceId: this.instanceId })).catch(() => {});
  }

  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.pending.size > 0 || this.writing.size > 0) && Date.now() < deadline) {
      this.writePending();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.redis.disconnect();
    this.sub.disconnect();
  }

  private setHealthy(healthy: boolean): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    if (healthy) {
      this.logger.info({ event: 'store_up', store: 'redis', pending: this.pending.size }, 'session store reachable');
      this.writePending();
    } else {
      this.logger.warn({ event: 'store_down', store: 'redis' }, 'session store unreachable: serving from memory');
    }
    this.emit('health', healthy);
  }

  private writePending(): void {
    const now = Date.now();
    for (const [id, w] of this.windowsWritten) if (now - w.at > this.ttlMs) this.windowsWritten.delete(id);
    if (!this.healthy) return;
    for (const id of this.pending.keys()) this.write(id);
  }

  private write(id: string): void {
    if (this.writing.has(id)) return; // the newer record goes after the write under way
    const record = this.pending.get(id);
    if (!record) return;
    this.writing.add(id);
    const from = this.windowsWritten.get(id)?.resultId ?? -1;
    // Windows are in resultId order: the new ones are at the end.
    let start = record.windows.length;
    while (start > 0 && record.windows[start - 1].resultId > from) start--;
    const fresh = record.windows.slice(start);
    const windowsKey = WINDOWS_PREFIX + id;
    const tx = this.redis.multi().set(KEY_PREFIX + id, JSON.stringify({ ...record, windows: [] }), 'PX', this.ttlMs);
    if (fresh.length > 0) tx.rpush(windowsKey, ...fresh.map((w) => JSON.stringify(w))).ltrim(windowsKey, -WINDOWS_KEPT, -1);
    tx.pexpire(windowsKey, this.ttlMs)
      .exec()
      .then(
        (replies) => {
          if (!replies || replies.some(([err]) => err)) return; // retried with the next record or timer
          if (record.ended) this.windowsWritten.delete(id);
          else this.windowsWritten.set(id, { resultId: fresh.at(-1)?.resultId ?? from, at: Date.now() });
          if (this.pending.get(id) === record) this.pending.delete(id);
        },
        () => {},
      )
      .finally(() => {
        this.writing.delete(id);
        // A newer record arrived meanwhile: write it now. A failed write waits for the retry timer.
        const next = this.pending.get(id);
        if (next && next !== record && this.healthy) this.write(id);
      });
  }
}
