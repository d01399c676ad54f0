import type { Config } from '../config/config.js';
import type { Session } from '../server/session.js';
import type { Logger } from '../utils/logger.js';
import { nowMs } from '../utils/timing.js';
import { ERRORS, errorMessage, type ErrorCode } from './errors.js';
import { parseFrame } from './frame-header.js';
import type { ModelHandler } from './model-handler.js';

export interface FrameHandlerHooks {
  onReceived?(session: Session, bytes: number): void;
  onRejected?(session: Session, code: ErrorCode): void;
}

/** Logged rejections per session; past it they are only counted, so a bad client cannot flood the log. */
const REJECTION_LOG_LIMIT = 20;

/**
 * Checks each binary frame message, refuses what is malformed with an
 * `error` that names the seq, and groups the rest into units for the
 * model handler.
 */
export class FrameHandler {
  private readonly logged = new WeakMap<Session, number>();

  constructor(
    private readonly config: Config,
    private readonly models: ModelHandler,
    private readonly logger: Logger,
    private readonly hooks: FrameHandlerHooks = {},
  ) {}

  handle(session: Session, data: Buffer): void {
    session.outcomes.received++;
    this.hooks.onReceived?.(session, data.length);
    const parsed = parseFrame(data, this.config.MAX_FRAME_BYTES);
    if (!parsed.ok) {
      this.reject(session, parsed.code, parsed.seq, parsed.detail);
      return;
    }
    const { header, image } = parsed;
    const unit = session.units.push(
      // Own copy: the socket's receive buffer must not be pinned by a frame waiting in a queue.
      { seq: header.seq, captureTs: header.captureTs, format: header.format, image: Buffer.from(image), receivedAt: nowMs() },
      nowMs(),
    );
    if (unit) this.models.enqueue(session, unit);
  }

  /** Close the open batch and window at the end of a session. */
  finish(session: Session): void {
    const unit = session.units.flush(nowMs());
    if (unit) this.models.enqueue(session, unit);
  }

  private reject(session: Session, code: ErrorCode, seq: number | undefined, detail: string): void {
    session.reject(code);
    this.hooks.onRejected?.(session, code);
    session.send(errorMessage(code, { seq }));
    const n = (this.logged.get(session) ?? 0) + 1;
    this.logged.set(session, n);
    if (n <= REJECTION_LOG_LIMIT) {
      this.logger[ERRORS[code].logLevel](
        { event: 'frame_rejected', sessionId: session.id, code, seq, detail, sampled: n === REJECTION_LOG_LIMIT },
        'frame rejected',
      );
    }
  }
}
