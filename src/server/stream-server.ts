import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Config } from '../config/config.js';
import { parseControl } from '../handler/control.js';
import { errorMessage, errorSpec, type ErrorCode } from '../handler/errors.js';
import type { FrameHandler } from '../handler/frame-handler.js';
import type { ModelHandler } from '../handler/model-handler.js';
import type { Logger } from '../utils/logger.js';
import type { LoadMonitor } from '../handler/load-monitor.js';
import { Outbox } from './outbox.js';
import { Session, type OutboundMessage, type SessionOptions } from './session.js';

export const STREAM_PATH = '/v1/stream';
export const PROTOCOL_VERSION = 1;
/** Room above MAX_FRAME_BYTES so a slightly oversized frame gets `frame_too_large`, not a closed socket. */
const PAYLOAD_SLACK_BYTES = 64 * 1024;
const LOAD_INTERVAL_MS = 1000;

export interface StreamServerDeps {
  config: Config;
  logger: Logger;
  /** Open sessions by id, shared with whoever needs to count them. */
  sessions: Map<string, Session>;
  frames: FrameHandler;
  models: ModelHandler;
  /** Whether upgrades are accepted right now (workers ready, not draining). */
  accepting: () => boolean;
  load: LoadMonitor;
  modelInfo: () => { name: string; version: string } | null;
}

/**
 * The WebSocket engine: upgrades on /v1/stream, the hello handshake,
 * heartbeats, and the life of each connection's session.
 */
export class StreamServer {
  readonly wss: WebSocketServer;
  readonly sessions: Map<string, Session>;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly loadTimer: NodeJS.Timeout;
  private readonly alive = new WeakSet<WebSocket>();
  private readonly sessionOptions: SessionOptions;

  constructor(private readonly deps: StreamServerDeps) {
    this.sessions = deps.sessions;
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
    const c = deps.config;
    this.sessionOptions = {
      fps: c.FPS,
      batchFrames: c.BATCH_FRAMES,
      windowFrames: c.WINDOW_FRAMES,
      reorderMaxFrames: c.REORDER_MAX_FRAMES,
      reorderMaxWaitMs: c.REORDER_MAX_WAIT_MS,
      resyncGapFrames: c.RESYNC_GAP_FRAMES,
      rateBurstFrames: c.RATE_BURST_FRAMES,
      captureTsToleranceMs: c.CAPTURE_TS_TOLERANCE_MS,
    };
    deps.models.onSettled = (session) => {
      if (session.ending && session.idle && !session.closed) this.finishSession(session);
    };
  }

  get connections(): number {
    return this.wss.clients.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== STREAM_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (!this.deps.accepting()) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  /** Close every connection with `code` (e.g. 1001 going away). */
  closeAll(code: number, reason: string): void {
    clearInterval(this.heartbeat);
    clearInterval(this.loadTimer);
    for (const ws of this.wss.clients) ws.close(code, reason);
  }

  /** Steer clients by the load: throttle, lift, or refuse new sessions. */
  private checkLoad(): void {
    const { models, load, logger } = this.deps;
    const before = load.current;
    const now = load.tick(
      { shedTotal: models.shedTotal, analysedTotal: models.analysedTotal, oldestWaitMs: models.oldestWaitMs() },
      this.sessions.size,
      LOAD_INTERVAL_MS,
    );
    if (now.accepting !== before.accepting) {
      logger.warn({ event: 'overload', accepting: now.accepting, fps: now.fps }, now.accepting ? 'accepting sessions again' : 'refusing new sessions');
    }
    for (const session of this.sessions.values()) this.throttle(session, now.fps);
  }

  private throttle(session: Session, fps: number): void {
    if (session.fps === fps) return;
    session.fps = fps;
    session.rate.setRate(fps);
    session.send({ type: 'throttle', fps, reason: fps < this.deps.config.FPS ? 'overloaded' : 'recovered' });
  }

  private ping(): void {
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
    const { config, logger } = this.deps;
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    let session: Session | null = null;
    const outbox = new Outbox(ws, config.SEND_BUFFER_BYTES, config.SLOW_CLIENT_TIMEOUT_MS, () => {
      logger.warn({ event: 'slow_consumer', sessionId: session?.id }, 'client stopped reading its results');
      ws.terminate();
    });
    const send = (msg: OutboundMessage) => outbox.send(msg);
    const fail = (code: ErrorCode, message?: string) => {
      send(errorMessage(code, { message }));
      ws.close(errorSpec(code).closeCode ?? 1008, code);
    };
    const helloTimer = setTimeout(() => fail('hello_required', 'no hello within the hello timeout'), config.HELLO_TIMEOUT_MS);

    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (!session) {
        const hello = isBinary ? null : parseControl(buf.toString('utf8'));
        if (hello?.type !== 'hello') {
          clearTimeout(helloTimer);
          fail('hello_required');
          return;
        }
        clearTimeout(helloTimer);
        if (!this.deps.load.current.accepting) {
          fail('overloaded');
          return;
        }
        session = new Session(this.sessionOptions);
        session.send = send;
        session.disconnect = (code, reason) => ws.close(code, reason);
        this.sessions.set(session.id, session);
        const model = this.deps.modelInfo();
        logger.info(
          {
            event: 'session_open',
            sessionId: session.id,
            remoteAddress: req.socket.remoteAddress,
            userAgent: req.headers['user-agent'],
            protocol: PROTOCOL_VERSION,
            client: hello.client,
          },
          'session opened',
        );
        send({
          type: 'welcome',
          protocol: PROTOCOL_VERSION,
          sessionId: session.id,
          fps: config.FPS,
          batchFrames: config.BATCH_FRAMES,
          windowFrames: config.WINDOW_FRAMES,
          maxFrameBytes: config.MAX_FRAME_BYTES,
          model,
        });
        return;
      }
      if (isBinary) {
        if (session.ending) return; // frames after bye are not part of the session
        this.deps.frames.handle(session, buf);
        return;
      }
      const msg = parseControl(buf.toString('utf8'));
      if (msg?.type === 'bye') this.endSession(session);
      else send(errorMessage('bad_message', { message: msg ? 'hello was already received' : undefined }));
    });

    ws.on('close', (code, reason) => {
      clearTimeout(helloTimer);
      outbox.close();
      if (!session) return;
      this.closeSession(session, code, reason.toString());
    });
    ws.on('error', (err) => logger.debug({ event: 'socket_error', err }, 'socket error'));
  }

  private endSession(session: Session): void {
    if (session.ending) return;
    session.ending = true;
    this.deps.frames.finish(session);
    if (session.idle) this.finishSession(session);
  }

  /** Every unit of an ended session is answered: summary, then close 1000. */
  private finishSession(session: Session): void {
    session.send(session.summary());
    session.disconnect(1000, 'bye');
  }

  private closeSession(session: Session, code: number, reason: string): void {
    if (session.closed) return;
    session.closed = true;
    this.deps.frames.discard(session);
    this.deps.models.remove(session);
    this.sessions.delete(session.id);
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
