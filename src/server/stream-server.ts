import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config/config.js';
import { clientLogFields, type HelloMessage } from '../handler/control.js';
import { errorSpec, type ErrorCode } from '../handler/errors.js';
import type { LoadMonitor } from '../handler/load-monitor.js';
import type { Scheduler } from '../handler/scheduler.js';
import type { Pipelines } from '../handler/session-pipeline.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import { PROTOCOL_VERSION, type ThrottleMessage, type WelcomeMessage } from '../protocol/server-messages.js';
import type { Logger } from '../utils/logger.js';
import type { Authenticator, Identity } from './auth.js';
import { Connection } from './connection.js';
import { requestUrl } from './http-server.js';
import { limitKey } from './limit-key.js';
import { hashResumeToken, newResumeToken, resumeTokenMatches, storedTokenHash } from './resume-token.js';
import type { SessionRegistry } from './session-registry.js';
import type { SessionStore } from './session-store.js';
import { Session, type SessionOptions } from './session.js';
import { RateLimiter } from '../handler/rate-limiter.js';

function refuse(socket: Duplex, status: number, text: string, extraHeaders = ''): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${extraHeaders}Content-Length: 0\r\n\r\n`);
}

export const STREAM_PATH = '/v1/stream';
/** Room above MAX_FRAME_BYTES so a slightly oversized frame gets `frame_too_large`, not a closed socket. */
const PAYLOAD_SLACK_BYTES = 64 * 1024;
const LOAD_INTERVAL_MS = 1000;

export interface StreamServerDeps {
  config: Config;
  logger: Logger;
  /** Sessions held by this instance, attached or waiting to be resumed. */
  sessions: SessionRegistry;
  /** Session state that outlives connections and instances. */
  store: SessionStore;
  auth: Authenticator;
  clientAddress: (req: IncomingMessage) => string;
  /** Opens each session's frame pipeline. */
  pipelines: Pick<Pipelines, 'open'>;
  /** What the load monitor reads of the work going to the workers. */
  scheduler: Pick<Scheduler, 'shedTotal' | 'analysedTotal' | 'oldestWaitMs'>;
  /** Whether upgrades are accepted right now (workers ready, not draining). */
  accepting: () => boolean;
  load: LoadMonitor;
  modelInfo: () => { name: string; version: string } | null;
  /** Each WebSocket connection accepted (metrics). */
  onConnection?: (ws: WebSocket) => void;
}

/**
 * The WebSocket engine: upgrades on /v1/stream, the hello handshake,
 * heartbeats, and the life of each connection's session.
 */
export class StreamServer {
  readonly wss: WebSocketServer;
  readonly sessions: SessionRegistry;
  /** The socket each attached session belongs to. */
  private readonly owners = new WeakMap<Session, Connection>();
  /** Each session's frames received at the last load check, to count the sessions that send. */
  private readonly receivedAtLoadCheck = new WeakMap<Session, number>();
  private readonly allowedOrigins: Set<string>;
  /** Open connections by limit key (an IPv4 address, an IPv6 /64). */
  private readonly perAddress = new Map<string, number>();
  private draining = false;
  private readonly drainWaiters: Array<() => void> = [];
  private upgradeLimiters = new Map<string, RateLimiter>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly loadTimer: NodeJS.Timeout;
  private readonly alive = new WeakSet<WebSocket>();
  /** Sessions whose summary was sent after `bye`. */
  private readonly finished = new WeakSet<Session>();
  readonly sessionOptions: SessionOptions;

  constructor(private readonly deps: StreamServerDeps) {
    this.sessions = deps.sessions;
    this.allowedOrigins = new Set(
      deps.config.ALLOWED_ORIGINS.split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    );
    this.wss = new WebSocketServer({
      noServer: true,
      // JPEG does not compress; deflate would only cost memory and CPU.
      perMessageDeflate: false,
      maxPayload: deps.config.MAX_FRAME_BYTES + PAYLOAD_SLACK_BYTES,
    });
    this.wss.on('connection', (ws, req) => this.onConnection(ws, req));
    this.heartbeat = setInterval(() => this.ping(), deps.config.HEARTBEAT_INTERVAL_MS);
    this.heartbeat.unref();
    this.loadTimer = setInterval(() => this.checkLoad(), LOAD_INTERVAL_MS);
    this.loadTimer.unref();
    this.sessionOptions = {
      openPipeline: (sessionId, sink, restored) => deps.pipelines.open(sessionId, sink, restored),
      onSettled: (session) => this.settled(session),
    };
    // Another instance resumed one of ours: this copy is stale, its connection goes.
    deps.store.on('takeover', (sessionId: string) => {
      const session = this.sessions.get(sessionId);
      if (!session) return;
      this.deps.logger.info({ event: 'session_taken_over', sessionId }, 'session resumed on another instance');
      this.owners.get(session)?.fail('session_replaced');
      session.end(); // no summary, no more saves
      this.closeSession(session, CLOSE_CODES.session_replaced.code, 'session_replaced', false);
    });
  }

  /** A unit of `session` was answered: save its checkpoint; an ended session that is idle now gets its summary. */
  private settled(session: Session): void {
    if (!session.closed) this.deps.store.save(session.toRecord());
    if (session.ending && session.idle && !session.closed) this.finishSession(session);
    if (this.drainWaiters.length > 0 && this.allIdle()) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  get connections(): number {
    return this.wss.clients.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = requestUrl(req);
    if (!url) {
      refuse(socket, 400, 'Bad Request');
      return;
    }
    if (url.pathname !== STREAM_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // Refused before any WebSocket exists: cross-site WebSocket hijacking, floods, overload.
    const origins = this.allowedOrigins;
    if (origins.size > 0 && !origins.has(req.headers.origin ?? '')) {
      refuse(socket, 403, 'Forbidden');
      return;
    }
    const address = this.deps.clientAddress(req);
    const key = limitKey(address);
    if (!this.upgradeRate(key).take(Date.now()) || (this.perAddress.get(key) ?? 0) >= this.deps.config.MAX_CONNECTIONS_PER_IP) {
      this.deps.logger.info({ event: 'upgrade_refused', remoteAddress: address, status: 429 }, 'too many connections from one address');
      refuse(socket, 429, 'Too Many Requests', 'Retry-After: 10\r\n');
      return;
    }
    if (!this.deps.accepting()) {
      refuse(socket, 503, 'Service Unavailable', 'Retry-After: 5\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.perAddress.set(key, (this.perAddress.get(key) ?? 0) + 1);
      ws.once('close', () => {
        const n = (this.perAddress.get(key) ?? 1) - 1;
        if (n > 0) this.perAddress.set(key, n);
        else this.perAddress.delete(key);
      });
      this.wss.emit('connection', ws, req);
    });
  }

  /**
   * Graceful drain: no new sessions; the frames every session holds are cut
   * into units and answered; every session is saved; then every client is
   * closed with `restart` and a JSON reason carrying a suggested retry delay.
   */
  async drain(timeoutMs: number, retryAfterMs: number): Promise<void> {
    this.draining = true;
    const { store, logger } = this.deps;
    for (const session of this.sessions.values()) if (!session.ending) session.pipeline.handOn(false);
    if (!this.allIdle()) {
      await new Promise<void>((resolve) => {
        this.drainWaiters.push(resolve);
        setTimeout(resolve, Math.max(0, timeoutMs - 1000)).unref();
      });
    }
    for (const session of this.sessions.values()) if (!session.ending) store.save(session.toRecord());
    await store.flush(1000);
    const reason = JSON.stringify({ reason: 'restart', retryAfterMs });
    logger.info({ event: 'drained', sessions: this.sessions.size, store: store.status() }, 'drained: closing connections');
    for (const ws of this.wss.clients) ws.close(CLOSE_CODES.restart.code, reason);
  }

  private allIdle(): boolean {
    for (const s of this.sessions.values()) if (!s.idle) return false;
    return true;
  }

  /** A detached session nobody resumed in time. */
  expire(session: Session): void {
    this.closeSession(session, CLOSE_CODES.abnormal.code, 'not resumed');
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

  /** Close every connection with `code` (e.g. `going_away`). */
  closeAll(code: number, reason: string): void {
    clearInterval(this.heartbeat);
    clearInterval(this.loadTimer);
    for (const ws of this.wss.clients) ws.close(code, reason);
    // Not saved as ended: what the store holds lets the clients resume on another instance.
    for (const session of [...this.sessions.values()]) this.closeSession(session, code, reason, false);
    this.sessions.close();
  }

  /** Steer clients by the load: throttle, lift, or refuse new sessions. */
  private checkLoad(): void {
    const { scheduler, load, logger } = this.deps;
    // The capacity is shared by the sessions that send: one whose student paused the camera, or whose client is
    // away, would otherwise lower everyone's share while using none of it.
    let sending = 0;
    for (const session of this.sessions.values()) {
      const received = session.pipeline.framesReceived;
      if (received !== (this.receivedAtLoadCheck.get(session) ?? 0)) sending++;
      this.receivedAtLoadCheck.set(session, received);
    }
    const before = load.current;
    const now = load.tick(
      { shedTotal: scheduler.shedTotal, analysedTotal: scheduler.analysedTotal, oldestWaitMs: scheduler.oldestWaitMs() },
      sending,
      LOAD_INTERVAL_MS,
    );
    if (now.accepting !== before.accepting) {
      logger.warn({ event: 'overload', accepting: now.accepting, fps: now.fps }, now.accepting ? 'accepting sessions again' : 'refusing new sessions');
    }
    for (const session of this.sessions.values()) this.throttle(session, now.fps);
  }

  private throttle(session: Session, fps: number): void {
    if (!session.pipeline.throttle(fps)) return;
    session.send({ type: 'throttle', fps, reason: fps < this.deps.config.FPS ? 'overloaded' : 'recovered' } satisfies ThrottleMessage);
  }

  private ping(): void {
    // Upgrade limiters of quiet addresses are forgotten, so the map stays small.
    this.upgradeLimiters = new Map([...this.upgradeLimiters].filter(([key]) => this.perAddress.has(key)));
    for (const ws of this.wss.clients) {
      if (!this.alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    this.deps.onConnection?.(ws);
    const { config, logger, auth } = this.deps;
    const clientAddress = this.deps.clientAddress(req);
    new Connection(ws, req, {
      config,
      logger,
      auth,
      clientAddress,
      openSession: (hello, identity, connection) => this.openSession(hello, identity, connection, req, clientAddress),
      onFrame: (session, data) => {
        // Frames after bye are not part of the session; frames after a drain began go unseen,
        // so the instance that resumes the session counts them lost, once.
        if (!session.ending && !this.draining) session.pipeline.receive(data);
      },
      onBye: (session) => this.endSession(session),
      onClose: (session, code, reason) => {
        if (!session || this.owners.get(session)?.ws !== ws) return; // taken over by a newer connection
        this.owners.delete(session);
        if (session.ending || !this.sessions.has(session.id)) this.closeSession(session, code, reason);
        else {
          session.detach();
          this.sessions.detach(session, (s) => this.expire(s));
          logger.info({ event: 'session_detached', sessionId: session.id, closeCode: code, resumeTtlMs: config.RESUME_TTL_MS }, 'session waiting for its client');
        }
      },
    });
  }

  /** A session of this instance, or one stored by any instance, if the hello may resume it. */
  private async claim(id: string, identity: Identity, resumeToken: string | undefined): Promise<Session | null> {
    const local = this.sessions.claim(id, identity.userId, resumeToken);
    if (local || this.sessions.has(id)) return local;
    const record = await this.deps.store.load(id);
    if (!record || record.ended || record.userId !== identity.userId || !resumeTokenMatches(storedTokenHash(record), resumeToken)) return null;
    if (this.sessions.has(id)) return this.sessions.claim(id, identity.userId, resumeToken); // raced with another hello
    const session = Session.fromRecord(this.sessionOptions, record);
    this.sessions.add(session);
    this.deps.store.announceTakeover(id);
    return session;
  }

  private async openSession(
    hello: HelloMessage,
    identity: Identity,
    connection: Connection,
    req: IncomingMessage,
    clientAddress: string,
  ): Promise<{ session: Session; resumed: boolean } | ErrorCode> {
    const { config, logger } = this.deps;
    if (this.draining) return 'overloaded';
    // A token bound to a session may only resume that session.
    const wanted = hello.sessionId ?? identity.sessionId;
    const claimed = wanted && (!identity.sessionId || identity.sessionId === wanted) ? await this.claim(wanted, identity, hello.resumeToken) : null;
    let session: Session;
    // Given to the client in the welcome and nowhere else; a resume replaces it, so a token seen once
    // (a log, a shoulder) is worth nothing after the client's next reconnect.
    const resumeToken = newResumeToken();
    if (claimed) {
      session = claimed;
      const previous = this.owners.get(session);
      if (previous) {
        this.owners.delete(session);
        previous.fail('session_replaced');
      }
      session.replaceResumeToken(hashResumeToken(resumeToken));
      // At once, not at the next checkpoint: the next resume may be on another instance.
      this.deps.store.save(session.toRecord());
    } else {
      if (!this.deps.load.current.accepting) return 'overloaded';
      // In demo mode everyone is the same user: the cap would be a cap on the instance.
      if (this.deps.auth.mode !== 'demo' && !this.makeRoomFor(identity.userId)) return 'too_many_sessions';
      session = new Session(this.sessionOptions, identity.userId, hashResumeToken(resumeToken));
      this.sessions.add(session);
    }
    this.owners.set(session, connection);
    const welcome = {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      sessionId: session.id,
      resumeToken,
      resumed: claimed !== null,
      // The resultId the next result will carry: a resuming client knows what it missed.
      nextResultId: session.pipeline.nextResultId,
      // The most the client may send; a `throttle` right after says if it must send less now.
      fps: config.FPS,
      batchFrames: config.BATCH_FRAMES,
      windowFrames: config.WINDOW_FRAMES,
      maxFrameBytes: config.MAX_FRAME_BYTES,
      model: this.deps.modelInfo(),
      auth: this.deps.auth.mode,
    } satisfies WelcomeMessage;
    connection.send(welcome);
    session.attach(
      (msg) => connection.send(msg),
      (code, reason) => connection.ws.close(code, reason),
      claimed ? { lastResultId: hello.lastResultId } : undefined,
    );
    // The welcome announced the configured fps: a session that must send less now is told at once.
    const fps = this.deps.load.current.fps;
    if (session.pipeline.fps !== fps) this.throttle(session, fps);
    else if (fps < config.FPS) session.send({ type: 'throttle', fps, reason: 'overloaded' } satisfies ThrottleMessage);
    logger.info(
      {
        event: 'session_open',
        sessionId: session.id,
        userId: identity.userId,
        resumed: claimed !== null,
        remoteAddress: clientAddress,
        userAgent: req.headers['user-agent'],
        protocol: PROTOCOL_VERSION,
        client: clientLogFields(hello.client),
      },
      claimed ? 'session resumed' : 'session opened',
    );
    return { session, resumed: claimed !== null };
  }

  /**
   * Room for one more session of `userId` under MAX_SESSIONS_PER_USER, which
   * counts detached sessions too (each holds memory for RESUME_TTL_MS): the
   * user's longest-detached sessions are ended to make it. False when every
   * session the user holds is attached.
   */
  private makeRoomFor(userId: string): boolean {
    const held = this.sessions.heldBy(userId);
    const over = held.length - this.deps.config.MAX_SESSIONS_PER_USER + 1;
    if (over <= 0) return true;
    const detached = held.filter((s) => !s.attached).sort((a, b) => (a.detachedAt ?? 0) - (b.detachedAt ?? 0));
    if (detached.length < over) return false;
    for (const s of detached.slice(0, over)) this.closeSession(s, CLOSE_CODES.abnormal.code, 'evicted');
    return true;
  }

  private endSession(session: Session): void {
    if (session.ending) return;
    session.end();
    session.pipeline.handOn(true);
    if (session.idle) this.finishSession(session);
  }

  /** Every unit of an ended session is answered: summary, then close `normal`. */
  private finishSession(session: Session): void {
    // Once: the last unit may be answered while `bye` is still being handled.
    if (this.finished.has(session)) return;
    this.finished.add(session);
    session.send(session.summary());
    session.disconnect(CLOSE_CODES.normal.code, 'bye');
  }

  private closeSession(session: Session, code: number, reason: string, save = true): void {
    if (session.closed) return;
    if (save) this.deps.store.save(session.endedRecord());
    session.close();
    this.sessions.remove(session);
    const s = session.summary();
    this.deps.logger.info(
      {
        event: 'session_close',
        sessionId: session.id,
        durationMs: s.durationMs,
        closeCode: code,
        closeReason: reason,
        frames: { received: s.framesReceived, analysed: s.framesAnalyzed, rejected: s.rejected, dropped: s.dropped, lost: s.framesLost },
        meanScore: s.meanScore,
      },
      'session closed',
    );
  }
}
