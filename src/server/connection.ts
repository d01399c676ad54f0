import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { Config } from '../config/config.js';
import { parseControl, type HelloMessage } from '../handler/control.js';
import { errorMessage, errorSpec, type ErrorCode } from '../handler/errors.js';
import { WindowCounter } from '../handler/rate-limiter.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import type { ServerMessage } from '../protocol/server-messages.js';
import type { Logger } from '../utils/logger.js';
import { AuthError, type Authenticator, type Identity } from './auth.js';
import { Outbox } from './outbox.js';
import type { Session } from './session.js';

/** Text messages a connection may send in any second. */
const CONTROL_MESSAGES_PER_SECOND = 20;
/**
 * Time a peer that keeps sending after the close began gets to read our
 * close frame and answer it; then its socket is cut. Long enough for the
 * close frame (and the error before it) to reach a client that reads.
 */
const CLOSE_GRACE_MS = 1000;

export interface ConnectionHost {
  config: Config;
  logger: Logger;
  auth: Authenticator;
  /** Client address (X-Forwarded-For honoured only from trusted proxies). */
  clientAddress: string;
  /** Opens or resumes the session a verified hello asks for; an error code refuses it. */
  openSession(hello: HelloMessage, identity: Identity, connection: Connection): Promise<{ session: Session; resumed: boolean } | ErrorCode>;
  onFrame(session: Session, data: Buffer): void;
  onBye(session: Session): void;
  /** The socket closed: the session (if any) is detached or ended by the host. */
  onClose(session: Session | null, code: number, reason: string): void;
}

type State = 'hello' | 'authenticating' | 'open' | 'closed';

/**
 * One WebSocket connection: the hello handshake (token, resume), then
 * frames and control messages for its session, and the way out.
 *
 * Once the close has begun (a fatal error, an abusive session, `bye`, a
 * drain, whoever began it), nothing the peer sends reaches the session:
 * it is counted, and reported once on the `connection_close` line, so a
 * flood costs one log line per reason, not one per message. A peer still
 * sending after CLOSE_GRACE_MS is cut off (terminate, once).
 */
export class Connection {
  private state: State = 'hello';
  private session: Session | null = null;
  private readonly outbox: Outbox;
  private readonly helloTimer: NodeJS.Timeout;
  private expiryTimer: NodeJS.Timeout | null = null;
  private readonly controlRate = new WindowCounter(1000);
  /** Messages that arrived after the close began, unread. */
  private readonly ignored = { frames: 0, texts: 0 };
  private cutTimer: NodeJS.Timeout | null = null;
  private terminated = false;

  constructor(
    readonly ws: WebSocket,
    readonly req: IncomingMessage,
    private readonly host: ConnectionHost,
  ) {
    const { config, logger } = host;
    this.outbox = new Outbox(ws, config.SEND_BUFFER_BYTES, config.SLOW_CLIENT_TIMEOUT_MS, () => {
      logger.warn({ event: 'slow_consumer', sessionId: this.session?.id }, 'client stopped reading its results');
      ws.terminate();
    });
    this.helloTimer = setTimeout(() => this.fail('hello_required', 'no hello within the hello timeout'), config.HELLO_TIMEOUT_MS);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    ws.on('error', (err) => logger.debug({ event: 'socket_error', err }, 'socket error'));
  }

  send(msg: ServerMessage): void {
    this.outbox.send(msg);
  }

  /** Send a fatal error and close with its close code, once: a connection already closing only counts what comes. */
  fail(code: ErrorCode, message?: string): void {
    if (this.state === 'closed' || this.ws.readyState !== this.ws.OPEN) return;
    this.send(errorMessage(code, { message }));
    this.ws.close(errorSpec(code).closeCode ?? CLOSE_CODES.policy_violation.code, code);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      this.ignore(isBinary);
      return;
    }
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (this.state === 'open' && isBinary) {
      this.host.onFrame(this.session!, buf);
      return;
    }
    if (!isBinary && this.controlRate.add(Date.now()) > CONTROL_MESSAGES_PER_SECOND) {
      this.host.logger.warn({ event: 'rate_abuse', sessionId: this.session?.id, messages: 'control' }, 'closing a connection that sends too many control messages');
      this.fail('rate_limited', 'too many control messages');
      return;
    }
    if (this.state === 'hello') {
      clearTimeout(this.helloTimer);
      const hello = isBinary ? null : parseControl(buf.toString('utf8'));
      if (hello?.type !== 'hello') {
        this.fail('hello_required');
        return;
      }
      this.state = 'authenticating';
      void this.authenticate(hello);
      return;
    }
    if (this.state === 'authenticating') {
      this.fail('hello_required', 'wait for welcome before sending anything else');
      return;
    }
    if (this.state !== 'open') return;
    const msg = parseControl(buf.toString('utf8'));
    if (msg?.type === 'bye') this.host.onBye(this.session!);
    else this.send(errorMessage('bad_message', { message: msg ? 'hello was already received' : undefined }));
  }

  private async authenticate(hello: HelloMessage): Promise<void> {
    let identity: Identity;
    try {
      identity = await this.host.auth.verify(hello.token);
    } catch (err) {
      const reason = err instanceof AuthError ? err.message : 'the token could not be verified';
      this.host.logger.info({ event: 'auth_refused', remoteAddress: this.host.clientAddress, reason }, 'hello refused');
      this.fail('unauthorized', reason);
      return;
    }
    if (this.state !== 'authenticating') return; // closed meanwhile
    const opened = await this.host.openSession(hello, identity, this);
    if (this.state !== 'authenticating') {
      // The socket closed while the session was being looked up: it waits for its client.
      if (typeof opened !== 'string') this.host.onClose(opened.session, CLOSE_CODES.abnormal.code, 'closed during hello');
      return;
    }
    if (typeof opened === 'string') {
      this.fail(opened);
      return;
    }
    this.session = opened.session;
    this.state = 'open';
    if (Number.isFinite(identity.expiresAt)) {
      // setTimeout cannot wait longer than about 24.8 days.
      const delay = Math.min(Math.max(0, identity.expiresAt - Date.now()), 2 ** 31 - 1);
      this.expiryTimer = setTimeout(() => this.fail('unauthorized', 'the token has expired'), delay);
      this.expiryTimer.unref();
    }
  }

  /** A message that came after the close began: counted, unread; a peer that goes on is cut off after the grace. */
  private ignore(isBinary: boolean): void {
    if (isBinary) this.ignored.frames++;
    else this.ignored.texts++;
    this.cutTimer ??= setTimeout(() => {
      this.terminated = true;
      this.ws.terminate();
    }, CLOSE_GRACE_MS);
  }

  private onClose(code: number, reason: string): void {
    clearTimeout(this.helloTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.cutTimer) clearTimeout(this.cutTimer);
    this.outbox.close();
    const session = this.session;
    this.state = 'closed';
    this.session = null;
    const { frames, texts } = this.ignored;
    this.host.logger[frames + texts > 0 ? 'info' : 'debug'](
      { event: 'connection_close', sessionId: session?.id, closeCode: code, closeReason: reason, ignored: { frames, texts }, terminated: this.terminated },
      'connection closed',
    );
    this.host.onClose(session, code, reason);
  }
}
