import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config/config.js';
import type { LoadMonitor } from '../handler/load-monitor.js';
import type { Scheduler } from '../handler/scheduler.js';
import type { Pipelines } from '../handler/session-pipeline.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import type { Logger } from '../utils/logger.js';
import type { Authenticator } from './auth.js';
import { Connection } from './connection.js';
import { Heartbeat } from './heartbeat.js';
import { LoadSteering } from './load-steering.js';
import { SessionLifecycle } from './session-lifecycle.js';
import type { SessionRegistry } from './session-registry.js';
import type { SessionStore } from './session-store.js';
import type { Session, SessionOptions } from './session.js';
import { UpgradeGate } from './upgrade-gate.js';

export { STREAM_PATH } from './upgrade-gate.js';

/** Room above MAX_FRAME_BYTES so a slightly oversized frame gets `frame_too_large`, not a closed socket. */
const PAYLOAD_SLACK_BYTES = 64 * 1024;

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
 * The WebSocket engine on /v1/stream: puts together the upgrade gate, the
 * heartbeat, load steering and the sessions' lifecycle, and gives each
 * accepted socket its `Connection`.
 */
export class StreamServer {
  readonly wss: WebSocketServer;
  readonly sessions: SessionRegistry;
  readonly sessionOptions: SessionOptions;
  private readonly gate: UpgradeGate;
  private readonly heartbeat: Heartbeat;
  private readonly steering: LoadSteering;
  private readonly lifecycle: SessionLifecycle;

  constructor(private readonly deps: StreamServerDeps) {
    const { config, logger, sessions } = deps;
    this.sessions = sessions;
    this.wss = new WebSocketServer({
      noServer: true,
      // JPEG does not compress; deflate would only cost memory and CPU.
      perMessageDeflate: false,
      maxPayload: config.MAX_FRAME_BYTES + PAYLOAD_SLACK_BYTES,
    });
    this.wss.on('connection', (ws, req) => this.onConnection(ws, req));
    this.gate = new UpgradeGate({ config, logger, clientAddress: deps.clientAddress, accepting: deps.accepting });
    this.heartbeat = new Heartbeat(config.HEARTBEAT_INTERVAL_MS, () => this.wss.clients);
    this.steering = new LoadSteering({ sessions, scheduler: deps.scheduler, load: deps.load, logger, maxFps: config.FPS });
    this.lifecycle = new SessionLifecycle({
      config,
      logger,
      sessions,
      store: deps.store,
      authMode: deps.auth.mode,
      pipelines: deps.pipelines,
      steering: this.steering,
      modelInfo: deps.modelInfo,
    });
    this.sessionOptions = this.lifecycle.sessionOptions;
  }

  get connections(): number {
    return this.wss.clients.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const key = this.gate.admit(req, socket);
    if (key === null) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.gate.track(key, ws);
      this.wss.emit('connection', ws, req);
    });
  }

  /**
   * Graceful drain: no new sessions; the frames every session holds are cut
   * into units and answered; every session is saved; then every client is
   * closed with `restart` and a JSON reason carrying a suggested retry delay.
   */
  async drain(timeoutMs: number, retryAfterMs: number): Promise<void> {
    await this.lifecycle.drain(timeoutMs);
    const reason = JSON.stringify({ reason: 'restart', retryAfterMs });
    this.deps.logger.info({ event: 'drained', sessions: this.sessions.size, store: this.deps.store.status() }, 'drained: closing connections');
    for (const ws of this.wss.clients) ws.close(CLOSE_CODES.restart.code, reason);
  }

  /** A detached session nobody resumed in time. */
  expire(session: Session): void {
    this.lifecycle.expire(session);
  }

  /** Close every connection with `code` (e.g. `going_away`). */
  closeAll(code: number, reason: string): void {
    this.gate.close();
    this.heartbeat.stop();
    this.steering.stop();
    for (const ws of this.wss.clients) ws.close(code, reason);
    this.lifecycle.closeAll(code, reason);
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    this.heartbeat.watch(ws);
    this.deps.onConnection?.(ws);
    const { config, logger, auth } = this.deps;
    const clientAddress = this.deps.clientAddress(req);
    const lifecycle = this.lifecycle;
    new Connection(ws, req, {
      config,
      logger,
      auth,
      clientAddress,
      openSession: (hello, identity, connection) =>
        lifecycle.open(hello, identity, connection, { remoteAddress: clientAddress, userAgent: req.headers['user-agent'] }),
      onFrame: (session, data) => lifecycle.frame(session, data),
      onBye: (session) => lifecycle.bye(session),
      onClose: (session, code, reason) => lifecycle.connectionClosed(session, ws, code, reason),
    });
  }
}
