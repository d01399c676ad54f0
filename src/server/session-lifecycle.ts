import type { WebSocket } from 'ws';
import type { Config } from '../config/config.js';
import { clientLogFields, type HelloMessage } from '../handler/control.js';
import type { ErrorCode } from '../handler/errors.js';
import type { Pipelines } from '../handler/session-pipeline.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import { PROTOCOL_VERSION, type WelcomeMessage } from '../protocol/server-messages.js';
import type { Logger } from '../utils/logger.js';
import type { Authenticator, Identity } from './auth.js';
import type { Connection } from './connection.js';
import type { LoadSteering } from './load-steering.js';
import { hashResumeToken, newResumeToken, resumeTokenMatches, storedTokenHash } from './resume-token.js';
import type { SessionRegistry } from './session-registry.js';
import type { SessionStore } from './session-store.js';
import { Session, type SessionOptions } from './session.js';

export interface SessionLifecycleDeps {
  config: Pick<Config, 'FPS' | 'BATCH_FRAMES' | 'WINDOW_FRAMES' | 'MAX_FRAME_BYTES' | 'MAX_SESSIONS_PER_USER' | 'RESUME_TTL_MS'>;
  logger: Logger;
  /** Sessions held by this instance, attached or waiting to be resumed. */
  sessions: SessionRegistry;
  /** Session state that outlives connections and instances. */
  store: SessionStore;
  /** In demo mode everyone is the same user, so the per-user cap does not apply. */
  authMode: Authenticator['mode'];
  /** Opens each session's frame pipeline. */
  pipelines: Pick<Pipelines, 'open'>;
  /** Whether new sessions are accepted, and the fps a session just opened is held to. */
  steering: Pick<LoadSteering, 'accepting' | 'steerOpened'>;
  modelInfo: () => { name: string; version: string } | null;
}

/** Who sent a hello, for the `session_open` line. */
export interface HelloSender {
  remoteAddress: string;
  userAgent: string | undefined;
}

/**
 * The life of each session on this instance: a verified hello opens,
 * resumes or takes over a session; frames go to its pipeline; `bye` ends
 * it; a lost connection detaches it until its client resumes or it
 * expires; another instance taking it over drops this copy; a drain hands
 * on and saves every session. Each answered unit saves the session's record.
 */
export class SessionLifecycle {
  /** What every `Session` of this instance is built with. */
  readonly sessionOptions: SessionOptions;
  /** The connection each attached session belongs to. */
  private readonly owners = new WeakMap<Session, Connection>();
  /** Sessions whose summary was sent after `bye`. */
  private readonly finished = new WeakSet<Session>();
  private draining = false;
  private readonly drainWaiters: Array<() => void> = [];

  constructor(private readonly deps: SessionLifecycleDeps) {
    this.sessionOptions = {
      openPipeline: (sessionId, sink, restored) => deps.pipelines.open(sessionId, sink, restored),
      onSettled: (session) => this.settled(session),
    };
    // Another instance resumed one of ours: this copy is stale, its connection goes.
    deps.store.on('takeover', (sessionId: string) => {
      const session = deps.sessions.get(sessionId);
      if (!session) return;
      deps.logger.info({ event: 'session_taken_over', sessionId }, 'session resumed on another instance');
      this.owners.get(session)?.fail('session_replaced');
      session.end(); // no summary, no more saves
      this.closeSession(session, CLOSE_CODES.session_replaced.code, 'session_replaced', false);
    });
  }

  /** Opens or resumes the session a verified hello asks for, and welcomes its client; an error code refuses it. */
  async open(hello: HelloMessage, identity: Identity, connection: Connection, sender: HelloSender): Promise<{ session: Session; resumed: boolean } | ErrorCode> {
    const { config, logger, sessions, store, steering } = this.deps;
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
      store.save(session.toRecord());
    } else {
      if (!steering.accepting) return 'overloaded';
      // In demo mode everyone is the same user: the cap would be a cap on the instance.
      if (this.deps.authMode !== 'demo' && !this.makeRoomFor(identity.userId)) return 'too_many_sessions';
      session = new Session(this.sessionOptions, identity.userId, hashResumeToken(resumeToken));
      sessions.add(session);
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
      auth: this.deps.authMode,
    } satisfies WelcomeMessage;
    connection.send(welcome);
    session.attach(
      (msg) => connection.send(msg),
      (code, reason) => connection.ws.close(code, reason),
      claimed ? { lastResultId: hello.lastResultId } : undefined,
    );
    steering.steerOpened(session);
    logger.info(
      {
        event: 'session_open',
        sessionId: session.id,
        userId: identity.userId,
        resumed: claimed !== null,
        remoteAddress: sender.remoteAddress,
        userAgent: sender.userAgent,
        protocol: PROTOCOL_VERSION,
        client: clientLogFields(hello.client),
      },
      claimed ? 'session resumed' : 'session opened',
    );
    return { session, resumed: claimed !== null };
  }

  /** A binary message on the session's connection. */
  frame(session: Session, data: Buffer): void {
    // Frames after bye are not part of the session; frames after a drain began go unseen,
    // so the instance that resumes the session counts them lost, once.
    if (!session.ending && !this.draining) session.pipeline.receive(data);
  }

  /** `bye`: every held frame is handed on; once all are answered, the summary and close `normal`. */
  bye(session: Session): void {
    if (session.ending) return;
    session.end();
    session.pipeline.handOn(true);
    if (session.idle) this.finishSession(session);
  }

  /** The socket `ws` closed: its session ends if it was ending, else waits for its client to resume. */
  connectionClosed(session: Session | null, ws: WebSocket, code: number, reason: string): void {
    if (!session || this.owners.get(session)?.ws !== ws) return; // taken over by a newer connection
    const { config, logger, sessions } = this.deps;
    this.owners.delete(session);
    if (session.ending || !sessions.has(session.id)) this.closeSession(session, code, reason);
    else {
      session.detach();
      sessions.detach(session, (s) => this.expire(s));
      logger.info({ event: 'session_detached', sessionId: session.id, closeCode: code, resumeTtlMs: config.RESUME_TTL_MS }, 'session waiting for its client');
    }
  }

  /** A detached session nobody resumed in time. */
  expire(session: Session): void {
    this.closeSession(session, CLOSE_CODES.abnormal.code, 'not resumed');
  }

  /**
   * No new sessions and no more frames; the frames every session holds are
   * cut into units and answered (for at most `timeoutMs` − 1 s); then every
   * session is saved and the store flushed, for the clients to resume
   * wherever they reconnect.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    const { sessions, store } = this.deps;
    for (const session of sessions.values()) if (!session.ending) session.pipeline.handOn(false);
    if (!this.allIdle()) {
      await new Promise<void>((resolve) => {
        this.drainWaiters.push(resolve);
        setTimeout(resolve, Math.max(0, timeoutMs - 1000)).unref();
      });
    }
    for (const session of sessions.values()) if (!session.ending) store.save(session.toRecord());
    await store.flush(1000);
  }

  /** Close every session with `code`, unsaved: what the store holds lets the clients resume on another instance. */
  closeAll(code: number, reason: string): void {
    const { sessions } = this.deps;
    for (const session of [...sessions.values()]) this.closeSession(session, code, reason, false);
    sessions.close();
  }

  /** A unit of `session` was answered: save its checkpoint; an ended session that is idle now gets its summary. */
  private settled(session: Session): void {
    if (!session.closed) this.deps.store.save(session.toRecord());
    if (session.ending && session.idle && !session.closed) this.finishSession(session);
    if (this.drainWaiters.length > 0 && this.allIdle()) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private allIdle(): boolean {
    for (const s of this.deps.sessions.values()) if (!s.idle) return false;
    return true;
  }

  /** A session of this instance, or one stored by any instance, if the hello may resume it. */
  private async claim(id: string, identity: Identity, resumeToken: string | undefined): Promise<Session | null> {
    const { sessions, store } = this.deps;
    const local = sessions.claim(id, identity.userId, resumeToken);
    if (local || sessions.has(id)) return local;
    const record = await store.load(id);
    if (!record || record.ended || record.userId !== identity.userId || !resumeTokenMatches(storedTokenHash(record), resumeToken)) return null;
    if (sessions.has(id)) return sessions.claim(id, identity.userId, resumeToken); // raced with another hello
    const session = Session.fromRecord(this.sessionOptions, record);
    sessions.add(session);
    store.announceTakeover(id);
    return session;
  }

  /**
   * Room for one more session of `userId` under MAX_SESSIONS_PER_USER, which
   * counts detached sessions too (each holds memory for RESUME_TTL_MS): the
   * user's longest-detached sessions are ended to make it. False when every
   * session the user holds is attached.
   */
  private makeRoomFor(userId: string): boolean {
    const held = this.deps.sessions.heldBy(userId);
    const over = held.length - this.deps.config.MAX_SESSIONS_PER_USER + 1;
    if (over <= 0) return true;
    const detached = held.filter((s) => !s.attached).sort((a, b) => (a.detachedAt ?? 0) - (b.detachedAt ?? 0));
    if (detached.length < over) return false;
    for (const s of detached.slice(0, over)) this.closeSession(s, CLOSE_CODES.abnormal.code, 'evicted');
    return true;
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
    this.deps.sessions.remove(session);
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
