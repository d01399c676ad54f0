import type { LoadMonitor } from '../handler/load-monitor.js';
import type { Scheduler } from '../handler/scheduler.js';
import type { SessionPipeline } from '../handler/session-pipeline.js';
import type { ThrottleMessage } from '../protocol/server-messages.js';
import type { Logger } from '../utils/logger.js';

export const LOAD_INTERVAL_MS = 1000;

/** What load steering uses of a session. */
export interface SteeredSession {
  readonly pipeline: Pick<SessionPipeline, 'framesReceived' | 'fps' | 'throttle'>;
  send(msg: ThrottleMessage): void;
}

export interface LoadSteeringDeps {
  /** The sessions this instance holds, attached or not. */
  sessions: { values(): Iterable<SteeredSession> };
  /** What the load monitor reads of the work going to the workers. */
  scheduler: Pick<Scheduler, 'shedTotal' | 'analysedTotal' | 'oldestWaitMs'>;
  load: LoadMonitor;
  logger: Logger;
  /** The fps a client may send at most (`FPS`): a throttle below it says `overloaded`, back at it `recovered`. */
  maxFps: number;
}

/**
 * Steers clients by the load, once a second: the `LoadMonitor` is fed the
 * scheduler's figures and the number of sessions that send, and its
 * decision goes out as a `throttle` to every session whose fps changes;
 * whether new sessions are accepted is read here by whoever opens them.
 */
export class LoadSteering {
  /** Each session's frames received at the last check, to count the sessions that send. */
  private readonly receivedAtCheck = new WeakMap<SteeredSession, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly deps: LoadSteeringDeps) {
    this.timer = setInterval(() => this.check(), LOAD_INTERVAL_MS);
    this.timer.unref();
  }

  /** Whether new sessions are accepted (false only when even the lowest fps cannot keep up). */
  get accepting(): boolean {
    return this.deps.load.current.accepting;
  }

  /**
   * A session just welcomed: the welcome announced the configured fps, so
   * one that must send less now is told at once.
   */
  steerOpened(session: SteeredSession): void {
    const fps = this.deps.load.current.fps;
    if (session.pipeline.fps !== fps) this.throttle(session, fps);
    else if (fps < this.deps.maxFps) session.send({ type: 'throttle', fps, reason: 'overloaded' } satisfies ThrottleMessage);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    const { sessions, scheduler, load, logger } = this.deps;
    // The capacity is shared by the sessions that send: one whose student paused the camera, or whose client is
    // away, would otherwise lower everyone's share while using none of it.
    let sending = 0;
    for (const session of sessions.values()) {
      const received = session.pipeline.framesReceived;
      if (received !== (this.receivedAtCheck.get(session) ?? 0)) sending++;
      this.receivedAtCheck.set(session, received);
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
    for (const session of sessions.values()) this.throttle(session, now.fps);
  }

  private throttle(session: SteeredSession, fps: number): void {
    if (!session.pipeline.throttle(fps)) return;
    session.send({ type: 'throttle', fps, reason: fps < this.deps.maxFps ? 'overloaded' : 'recovered' } satisfies ThrottleMessage);
  }
}
