import type { Config } from '../config/config.js';
import type { DropReason } from './outcomes.js';
import type { Session } from '../server/session.js';
import type { Logger } from '../utils/logger.js';
import { nowMs } from '../utils/timing.js';
import { errorMessage, errorSpec, type ErrorCode } from './errors.js';
import type { FrameBudget } from './frame-budget.js';
import { parseFrame } from './frame-header.js';
import { inspectJpeg, type ImageLimits } from './jpeg.js';
import type { ModelHandler } from './model-handler.js';
import type { ReorderEvent } from './reorder-buffer.js';
import type { UnitAlignment } from './unit-alignment.js';
import type { FrameEntry } from './unit-builder.js';

export interface FrameHandlerHooks {
  onReceived?(session: Session, bytes: number): void;
  onRejected?(session: Session, code: ErrorCode): void;
  onDropped?(session: Session, reason: DropReason, n: number): void;
  onAligned?(session: Session, delayMs: number): void;
}

/** Logged rejections per session; past it they are only counted, so a bad client cannot flood the log. */
const REJECTION_LOG_LIMIT = 20;
/** At most one rate_limited notice per session in this many ms. */
const RATE_NOTICE_INTERVAL_MS = 10_000;

/**
 * The frame path up to the model handler. Each binary message goes, in
 * this order, through: the session's rate limit, the header check, the
 * JPEG structure check, the clock check, the global byte budget, the
 * reorder buffer and the unit builder. Every frame ends counted: analysed
 * later by the model handler, rejected here with an error naming its seq,
 * or dropped with a reason.
 */
export class FrameHandler {
  private readonly logged = new WeakMap<Session, number>();
  private readonly waiting = new Set<Session>();
  private readonly limits: ImageLimits;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly config: Config,
    private readonly models: ModelHandler,
    private readonly budget: FrameBudget,
    private readonly logger: Logger,
    /** Number of open sessions, for each one's share of the budget. */
    private readonly sessions: () => number,
    private readonly hooks: FrameHandlerHooks = {},
    /** Spreads the sessions' units over the period (null: ALIGN_UNITS off). */
    private readonly alignment: UnitAlignment<Session> | null = null,
  ) {
    this.limits = { maxWidth: config.MAX_IMAGE_WIDTH, maxHeight: config.MAX_IMAGE_HEIGHT };
    // Frames waiting for a missing seq are released by time as well as by arrival.
    this.timer = setInterval(() => this.pollReorder(), Math.max(20, Math.min(100, config.REORDER_MAX_WAIT_MS / 2)));
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  handle(session: Session, data: Buffer): void {
    const now = nowMs();
    session.outcomes.received++;
    this.hooks.onReceived?.(session, data.length);

    const parsed = parseFrame(data, this.config.MAX_FRAME_BYTES);
    if (!session.rate.take(now)) {
      this.rateLimited(session, now);
      // Its seq slot is taken, so the frame is not counted lost as well.
      if (parsed.ok) this.place(session, { seq: parsed.header.seq, captureTs: parsed.header.captureTs, item: null, refused: 'rateLimited' }, now);
      else session.units.note('rateLimited');
      return;
    }
    if (!parsed.ok) {
      this.reject(session, parsed.code, parsed.seq, parsed.detail, false);
      return;
    }
    const { header, image } = parsed;
    const jpeg = inspectJpeg(image, this.limits);
    if (!jpeg.ok) {
      this.reject(session, jpeg.code, header.seq, jpeg.detail, true, header.captureTs);
      return;
    }
    const clock = session.clock.check(header.seq, header.captureTs, Date.now());
    if (!clock.ok) {
      this.reject(session, 'timestamp_invalid', header.seq, clock.detail!, true, header.captureTs);
      return;
    }
    if (!this.budget.hasRoom(image.length) && !this.models.shedFor(image.length, session, this.sessions())) {
      this.drop(session, 'shed');
      this.place(session, { seq: header.seq, captureTs: header.captureTs, item: null, refused: 'shed' }, now);
      return;
    }
    const entry: FrameEntry = {
      seq: header.seq,
      captureTs: header.captureTs,
      format: header.format,
      width: jpeg.width,
      height: jpeg.height,
      image: this.budget.admit(session, image),
      receivedAt: now,
    };
    const verdict = this.place(session, { seq: entry.seq, captureTs: entry.captureTs, item: entry }, now);
    if (verdict === 'duplicate' || verdict === 'late') {
      this.budget.free(session, [entry.image]);
      this.drop(session, verdict);
      session.units.note(verdict);
      if (verdict === 'late') session.outcomes.lost--;
    }
  }

  /**
   * Hand on every frame held and cut the open batch into a unit: at the end
   * of a session (`closeWindow`), or when draining (the window stays open:
   * the session goes on elsewhere in the same alignment).
   */
  handOn(session: Session, closeWindow: boolean): void {
    const now = nowMs();
    this.forward(session, session.reorder.drain(), now);
    const unit = closeWindow ? session.units.flush(now) : session.units.cutPartial(now);
    if (unit) this.models.enqueue(session, unit);
    this.waiting.delete(session);
  }

  /** A session that went away: free what it holds before the model handler. */
  discard(session: Session): void {
    this.waiting.delete(session);
    this.alignment?.forget(session);
    const held = [...session.reorder.heldItems(), ...session.units.heldFrames()];
    this.budget.free(session, held.map((f) => f.image));
    this.drop(session, 'session_closed', held.length);
  }

  private place(session: Session, slot: Parameters<Session['reorder']['push']>[0], now: number) {
    const { verdict, events } = session.reorder.push(slot, now);
    this.forward(session, events, now);
    if (session.reorder.size > 0) this.waiting.add(session);
    else this.waiting.delete(session);
    return verdict;
  }

  private forward(session: Session, events: ReorderEvent<FrameEntry>[], now: number): void {
    if (events.length === 0) return;
    for (const e of events) {
      if (e.kind === 'lost') session.outcomes.lost += e.seqTo - e.seqFrom + 1;
      else if (e.kind === 'resync') {
        session.outcomes.resyncs++;
        this.logger.info({ event: 'resync', sessionId: session.id, fromSeq: e.fromSeq, toSeq: e.toSeq }, 'seq re-synced');
      }
    }
    for (const unit of session.units.consume(events, now)) {
      this.align(session, unit.frames.length, now);
      this.models.enqueue(session, unit);
    }
  }

  /** A unit was cut at `now`: ask the client to shift its capture when its units crowd another session's. */
  private align(session: Session, frames: number, now: number): void {
    const alignment = this.alignment;
    if (!alignment) return;
    // Only whole units at the full fps keep the period; a throttled or lossy session holds no phase.
    if (session.fps !== this.config.FPS || frames !== this.config.BATCH_FRAMES) {
      alignment.forget(session);
      return;
    }
    const delayMs = alignment.observe(session, now);
    if (delayMs === null) return;
    session.send({ type: 'align', delayMs });
    this.hooks.onAligned?.(session, delayMs);
  }

  private pollReorder(): void {
    const now = nowMs();
    for (const session of this.waiting) {
      this.forward(session, session.reorder.poll(now), now);
      if (session.reorder.size === 0) this.waiting.delete(session);
    }
  }

  private rateLimited(session: Session, now: number): void {
    this.drop(session, 'rate_limited');
    if (session.rateAbuse.add(now) > this.config.RATE_ABUSE_FRAMES) {
      this.logger.warn({ event: 'rate_abuse', sessionId: session.id }, 'closing a session that keeps sending too fast');
      session.send(errorMessage('rate_limited'));
      session.disconnect(errorSpec('rate_limited').closeCode ?? 1008, 'rate_limited');
      return;
    }
    if (now - session.rateNoticeAt >= RATE_NOTICE_INTERVAL_MS) {
      session.rateNoticeAt = now;
      session.send({
        type: 'notice',
        code: 'rate_limited',
        fps: session.rate.rate,
        message: `frames above ${session.rate.rate} fps are dropped; send at most ${session.rate.rate} frames a second`,
      });
    }
  }

  private drop(session: Session, reason: DropReason, n = 1): void {
    if (n <= 0) return;
    session.drop(reason, n);
    this.hooks.onDropped?.(session, reason, n);
  }

  private reject(session: Session, code: ErrorCode, seq: number | undefined, detail: string, hasSlot: boolean, captureTs = 0): void {
    session.reject(code);
    this.hooks.onRejected?.(session, code);
    session.send(errorMessage(code, { seq }));
    // A refused frame whose header was sound keeps its seq slot, so it is
    // not counted lost as well; one with a broken header has no trustworthy seq.
    if (hasSlot && seq !== undefined) this.place(session, { seq, captureTs, item: null, refused: 'rejected' }, nowMs());
    else session.units.note('rejected');
    const n = (this.logged.get(session) ?? 0) + 1;
    this.logged.set(session, n);
    if (n <= REJECTION_LOG_LIMIT) {
      this.logger[errorSpec(code).logLevel](
        { event: 'frame_rejected', sessionId: session.id, code, seq, detail, sampled: n === REJECTION_LOG_LIMIT },
        'frame rejected',
      );
    }
  }
}
