import type { Config } from '../config/config.js';
import type { AnalyseMeta } from '../ipc/codec.js';
import type { OutcomeBody, ResultBody } from '../ipc/messages.js';
import type { WorkerPool } from '../ipc/worker-pool.js';
import { WorkerRequestError } from '../ipc/worker.js';
import type { OutboundMessage } from '../protocol/messages.js';
import type { Session } from '../server/session.js';
import type { DropReason } from './outcomes.js';
import type { Logger } from '../utils/logger.js';
import { nowMs } from '../utils/timing.js';
import { errorMessage, type ErrorCode } from './errors.js';
import type { FrameBudget } from './frame-budget.js';
import type { Unit } from './unit-builder.js';

export interface UnitTiming {
  queueMs: number;
  ipcMs: number;
  modelMs: number;
}

export interface ModelHandlerHooks {
  /** Called once per unit that reached a worker and came back. */
  onUnitDone?(session: Session, unit: Unit, timing: UnitTiming): void;
  /** Called for every result message sent. */
  onResult?(session: Session, kind: 'batch' | 'window', unit: Unit): void;
  onDropped?(session: Session, reason: DropReason, n: number): void;
  onAnalysed?(session: Session, n: number): void;
  /** A frame the worker could not decode (`image_undecodable`). */
  onRejected?(session: Session, code: ErrorCode): void;
}

const unitBytes = (unit: Unit) => unit.frames.reduce((n, f) => n + f.image.length, 0);
const waitingWithFrames = (session: Session) => {
  let n = 0;
  for (const unit of session.queue) if (unit.frames.length > 0) n++;
  return n;
};

/**
 * Hands units to the worker pool and results back to sessions.
 *
 * A session has at most one unit at a worker, because each unit needs the
 * model context the previous one returned. Sessions with a unit ready wait
 * in a ring and are served round-robin, so a busy session cannot starve a
 * quiet one.
 *
 * When the workers fall behind, load is shed where it hurts least: a unit
 * that waited longer than MAX_UNIT_AGE_MS, a session's oldest unit past its
 * queue limits, and, when the global frame budget is full, the oldest unit
 * of the session holding the most bytes. A shed unit gives up its frames
 * (counted as `shed`) but still travels, empty, so the session keeps its
 * result cadence and its windows still close.
 */
export class ModelHandler {
  private readonly ring: Session[] = [];
  private readonly queued = new Set<Session>();
  /** Frames shed since start, for the load monitor. */
  shedTotal = 0;
  analysedTotal = 0;

  constructor(
    private readonly pool: WorkerPool,
    private readonly budget: FrameBudget,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly hooks: ModelHandlerHooks = {},
  ) {
    pool.on('idle', () => this.pump());
  }

  /** Units waiting for a worker, over all sessions. */
  queuedUnits(): number {
    let n = 0;
    for (const s of this.queued) n += s.queue.length;
    return n;
  }

  /** How long the oldest waiting unit has waited, in ms. */
  oldestWaitMs(now = nowMs()): number {
    let oldest = now;
    for (const s of this.queued) if (s.queue.length > 0) oldest = Math.min(oldest, s.queue[0].createdAt);
    return now - oldest;
  }

  enqueue(session: Session, unit: Unit): void {
    session.queue.push(unit);
    session.queuedBytes += unitBytes(unit);
    this.queued.add(session);
    // A shed unit stays in the queue, empty, for its place in the result cadence: only units with frames count.
    while (
      (waitingWithFrames(session) > this.config.SESSION_QUEUE_UNITS || session.queuedBytes > this.config.SESSION_QUEUE_BYTES) &&
      this.shedOldest(session)
    );
    if (!session.inFlight && !this.ring.includes(session)) this.ring.push(session);
    this.pump();
  }

  /**
   * Make room in the frame budget for a frame of `bytes` that `requester`
   * wants to add. Each session is entitled to an equal share of the
   * budget: while the requester stays within its share, the oldest queued
   * unit of the session furthest above its share is shed; otherwise the new
   * frame is the one to shed (false). So whoever sends first cannot crowd
   * the others out.
   */
  shedFor(bytes: number, requester: Session, sessions: number): boolean {
    const share = this.budget.limitBytes / Math.max(1, sessions);
    if (requester.heldBytes + bytes > share) return false;
    while (!this.budget.hasRoom(bytes)) {
      let victim: Session | null = null;
      for (const s of this.queued) if (s.queuedBytes > 0 && (!victim || s.heldBytes > victim.heldBytes)) victim = s;
      if (!victim || victim.heldBytes <= share || !this.shedOldest(victim)) return false;
    }
    return true;
  }

  /** Forget a session that went away: its waiting frames are dropped. */
  remove(session: Session): void {
    const i = this.ring.indexOf(session);
    if (i >= 0) this.ring.splice(i, 1);
    for (const unit of session.queue.splice(0)) {
      this.budget.free(session, unit.frames.map((f) => f.image));
      this.drop(session, 'session_closed', unit.frames.length);
    }
    session.queuedBytes = 0;
    this.queued.delete(session);
  }

  /** Set by the stream server to learn when a session's unit is answered. */
  onSettled?: (session: Session) => void;

  private drop(session: Session, reason: DropReason, n: number): void {
    if (n <= 0) return;
    session.drop(reason, n);
    this.hooks.onDropped?.(session, reason, n);
  }

  private shedUnit(session: Session, unit: Unit): void {
    const n = unit.frames.length;
    const bytes = unitBytes(unit);
    session.queuedBytes -= bytes;
    this.budget.free(session, unit.frames.map((f) => f.image));
    unit.counts.shed += n;
    unit.frames = [];
    this.shedTotal += n;
    this.drop(session, 'shed', n);
  }

  private shedOldest(session: Session): boolean {
    const oldest = session.queue.find((u) => u.frames.length > 0);
    if (!oldest) return false;
    this.shedUnit(session, oldest);
    return true;
  }

  private pump(): void {
    while (this.ring.length > 0 && this.pool.idleCount > 0) {
      const session = this.ring.shift()!;
      const unit = this.nextUnit(session);
      if (unit) this.dispatch(session, unit);
    }
  }

  /**
   * The session's next unit for a worker. Stale units are shed on the way;
   * shed units that close no window are answered here, without a worker,
   * so they never take a turn from a unit with frames.
   */
  private nextUnit(session: Session): Unit | null {
    const now = nowMs();
    while (session.queue.length > 0) {
      const unit = session.queue[0];
      if (unit.frames.length > 0 && now - unit.createdAt > this.config.MAX_UNIT_AGE_MS) this.shedUnit(session, unit);
      session.queue.shift();
      session.queuedBytes -= unitBytes(unit);
      if (session.queue.length === 0) this.queued.delete(session);
      if (unit.frames.length > 0 || unit.closesWindow) return unit;
      this.sendBatch(session, unit, { score: null, state: 'unknown', signals: {} }, 0, []);
      session.settle(unit);
    }
    this.queued.delete(session);
    return null;
  }

  private dispatch(session: Session, unit: Unit): void {
    session.inFlight = true;
    const meta: AnalyseMeta = {
      session: session.id,
      closesWindow: unit.closesWindow,
      batchFrames: this.config.BATCH_FRAMES,
      windowFrames: this.config.WINDOW_FRAMES,
      fps: this.config.FPS,
      frames: unit.frames.map((f) => ({ seq: f.seq, captureTs: f.captureTs, format: f.format, width: f.width, height: f.height })),
      context: session.context,
    };
    const images = unit.frames.map((f) => f.image);
    const sentAt = nowMs();
    // The result was checked at the IPC boundary (ipc/messages.ts). Whatever else throws on the way to the
    // session is a server bug: it costs this unit, never the process (a rejection with no handler would).
    this.pool
      .run(meta, images)
      .then(
        (result) => {
          this.hooks.onUnitDone?.(session, unit, { queueMs: sentAt - unit.createdAt, ipcMs: nowMs() - sentAt, modelMs: result.modelMs });
          this.deliver(session, unit, result);
        },
        (err: unknown) => this.fail(session, unit, err),
      )
      .catch((err: unknown) => this.logger.error({ event: 'error', sessionId: session.id, seqFrom: unit.seqFrom, err }, 'a unit\'s result could not be delivered'))
      .finally(() => {
        // Settled: the worker has read these frames (or the unit is given up), nothing refers to them now.
        this.budget.free(session, images);
        session.settle(unit);
        session.inFlight = false;
        if (session.queue.length > 0 && !session.closed) this.ring.push(session);
        this.onSettled?.(session);
        this.pump();
      })
      .catch((err: unknown) => this.logger.error({ event: 'error', sessionId: session.id, err }, 'settling a unit failed'));
  }

  private deliver(session: Session, unit: Unit, result: ResultBody): void {
    session.context = result.context ?? null;
    const frames = result.frames;
    let analysed = 0;
    for (let i = 0; i < frames.length; i++) {
      if (frames[i].analysed) {
        analysed++;
        continue;
      }
      session.reject('image_undecodable');
      this.hooks.onRejected?.(session, 'image_undecodable');
      unit.counts.rejected++;
      if (unit.windowCounts) unit.windowCounts.rejected++;
      session.send(errorMessage('image_undecodable', { seq: unit.frames[i]?.seq }));
    }
    session.outcomes.analysed += analysed;
    this.analysedTotal += analysed;
    this.hooks.onAnalysed?.(session, analysed);
    this.sendBatch(session, unit, result.batch, analysed, frames);
    if (unit.closesWindow) this.sendWindow(session, unit, result.window ?? { score: null, state: 'unknown', signals: {} });
  }

  private fail(session: Session, unit: Unit, err: unknown): void {
    const failure = err instanceof WorkerRequestError ? err.failure : 'crash';
    this.logger.warn(
      { event: 'error', sessionId: session.id, seqFrom: unit.seqFrom, seqTo: unit.seqTo, failure, err },
      'unit not analysed',
    );
    this.drop(session, 'model_error', unit.frames.length);
    session.send(errorMessage('model_error', { seq: unit.seqFrom }));
    const none: OutcomeBody = { score: null, state: 'unknown', signals: { error: 'model_error' } };
    this.sendBatch(session, unit, none, 0, []);
    if (unit.closesWindow) this.sendWindow(session, unit, none);
  }

  private sendBatch(session: Session, unit: Unit, outcome: OutcomeBody, analysed: number, frames: ResultBody['frames']): void {
    session.windowAnalysed += analysed;
    if (unit.slots === 0) return; // a unit that only closes the window at the end of a session
    const state = outcome.state;
    session.recordBatch(outcome.score, state, analysed, unit.slots);
    const message: OutboundMessage = {
      type: 'result',
      kind: 'batch',
      resultId: session.nextResultId++,
      seqFrom: unit.seqFrom,
      seqTo: unit.seqTo,
      framesAnalyzed: analysed,
      score: outcome.score,
      state,
      signals: outcome.signals,
      counts: unit.counts,
      frames: frames.map((f, i) => ({ ...f, seq: unit.frames[i]?.seq })),
    };
    session.send(message);
    this.hooks.onResult?.(session, 'batch', unit);
  }

  private sendWindow(session: Session, unit: Unit, outcome: OutcomeBody): void {
    const analysed = session.windowAnalysed;
    session.windowAnalysed = 0;
    session.send({
      type: 'result',
      kind: 'window',
      resultId: session.nextResultId++,
      seqFrom: unit.windowSeqFrom,
      seqTo: unit.windowSeqTo,
      framesAnalyzed: analysed,
      score: outcome.score,
      state: outcome.state,
      signals: outcome.signals,
      counts: unit.windowCounts,
    });
    this.hooks.onResult?.(session, 'window', unit);
  }
}
