import type { Config } from '../config/config.js';
import type { AnalyseMeta, OutcomeBody, ResultBody } from '../ipc/codec.js';
import type { WorkerPool } from '../ipc/worker-pool.js';
import { WorkerRequestError } from '../ipc/worker.js';
import { STATES, type Session, type State } from '../server/session.js';
import type { Logger } from '../utils/logger.js';
import { nowMs } from '../utils/timing.js';
import { errorMessage } from './errors.js';
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
  onResult?(session: Session, kind: 'batch' | 'window'): void;
}

/**
 * Hands units to the worker pool and results back to sessions.
 *
 * A session has at most one unit at a worker, because each unit needs the
 * model context the previous one returned. Sessions with a unit ready wait
 * in a ring and are served round-robin, so a busy session cannot starve a
 * quiet one. A session's queue is bounded: when the workers fall behind,
 * its oldest waiting unit gives up its frames (counted as `shed`) but still
 * travels, empty, so results keep their cadence and windows still close.
 */
export class ModelHandler {
  private readonly ring: Session[] = [];
  private readonly onIdle = () => this.pump();

  constructor(
    private readonly pool: WorkerPool,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly hooks: ModelHandlerHooks = {},
  ) {
    pool.on('idle', this.onIdle);
  }

  /** Frames waiting in session queues, for gauges. */
  queuedUnits(): number {
    return this.ring.reduce((n, s) => n + s.queue.length, 0);
  }

  enqueue(session: Session, unit: Unit): void {
    session.queue.push(unit);
    if (session.queue.length > this.config.SESSION_QUEUE_UNITS) {
      const oldest = session.queue.find((u) => u.frames.length > 0);
      if (oldest) {
        session.drop('shed', oldest.frames.length);
        oldest.shed += oldest.frames.length;
        oldest.frames = [];
      }
    }
    if (!session.inFlight && !this.ring.includes(session)) this.ring.push(session);
    this.pump();
  }

  /** Forget a session that went away: its waiting frames are dropped. */
  remove(session: Session): void {
    const i = this.ring.indexOf(session);
    if (i >= 0) this.ring.splice(i, 1);
    for (const unit of session.queue.splice(0)) session.drop('session_closed', unit.frames.length);
  }

  private pump(): void {
    while (this.ring.length > 0 && this.pool.idleCount > 0) {
      const session = this.ring.shift()!;
      const unit = session.queue.shift();
      if (!unit) continue;
      this.dispatch(session, unit);
    }
  }

  private dispatch(session: Session, unit: Unit): void {
    session.inFlight = true;
    const meta: AnalyseMeta = {
      session: session.id,
      closesWindow: unit.closesWindow,
      batchFrames: this.config.BATCH_FRAMES,
      windowFrames: this.config.WINDOW_FRAMES,
      fps: this.config.FPS,
      frames: unit.frames.map((f) => ({ seq: f.seq, captureTs: f.captureTs, format: f.format })),
      context: session.context,
    };
    const sentAt = nowMs();
    this.pool.run(meta, unit.frames.map((f) => f.image)).then(
      (result) => {
        const ipcMs = nowMs() - sentAt;
        this.hooks.onUnitDone?.(session, unit, { queueMs: sentAt - unit.createdAt, ipcMs, modelMs: result.modelMs });
        this.deliver(session, unit, result);
      },
      (err: unknown) => this.fail(session, unit, err),
    ).finally(() => {
      session.inFlight = false;
      if (session.queue.length > 0 && !session.closed) this.ring.push(session);
      this.onSettled?.(session);
      this.pump();
    });
  }

  /** Set by the stream server to learn when a session's unit is answered. */
  onSettled?: (session: Session) => void;

  private deliver(session: Session, unit: Unit, result: ResultBody): void {
    session.context = result.context ?? null;
    const frames = result.frames;
    const analysed = frames.filter((f) => f.analysed).length;
    session.outcomes.analysed += analysed;
    for (let i = 0; i < frames.length; i++) {
      if (frames[i].analysed) continue;
      session.reject('frame_invalid');
      session.send(errorMessage('frame_invalid', { seq: unit.frames[i]?.seq, message: `the image could not be decoded (${String(frames[i].error ?? 'invalid')})` }));
    }
    this.sendBatch(session, unit, result.batch, analysed, frames);
    if (unit.closesWindow) {
      this.sendWindow(session, unit, result.window ?? { score: null, state: 'unknown', signals: {} }, analysed);
    }
  }

  private fail(session: Session, unit: Unit, err: unknown): void {
    const failure = err instanceof WorkerRequestError ? err.failure : 'crash';
    this.logger.warn(
      { event: 'error', sessionId: session.id, seqFrom: unit.seqFrom, seqTo: unit.seqTo, failure, err },
      'unit not analysed',
    );
    session.drop('model_error', unit.frames.length);
    session.send(errorMessage('model_error', { seq: unit.seqFrom }));
    const none: OutcomeBody = { score: null, state: 'unknown', signals: { error: 'model_error' } };
    this.sendBatch(session, unit, none, 0, []);
    if (unit.closesWindow) this.sendWindow(session, unit, none, 0);
  }

  private sendBatch(session: Session, unit: Unit, outcome: OutcomeBody, analysed: number, frames: ResultBody['frames']): void {
    session.windowAnalysed += analysed;
    if (unit.frames.length === 0 && unit.shed === 0) return; // an end-of-session unit that only closes the window
    const state = asState(outcome.state);
    session.recordBatch(outcome.score, state, analysed, this.config.FPS, unit.frames.length + unit.shed);
    const message: Record<string, unknown> & { type: string } = {
      type: 'result',
      kind: 'batch',
      resultId: session.nextResultId++,
      seqFrom: unit.seqFrom,
      seqTo: unit.seqTo,
      framesAnalyzed: analysed,
      score: outcome.score,
      state,
      signals: outcome.signals,
      frames: frames.map((f, i) => ({ ...f, seq: unit.frames[i]?.seq })),
    };
    if (unit.shed > 0) message.framesShed = unit.shed;
    session.send(message);
    this.hooks.onResult?.(session, 'batch');
  }

  private sendWindow(session: Session, unit: Unit, outcome: OutcomeBody, analysed: number): void {
    const windowAnalysed = session.windowAnalysed;
    session.windowAnalysed = 0;
    session.send({
      type: 'result',
      kind: 'window',
      resultId: session.nextResultId++,
      seqFrom: unit.windowSeqFrom,
      seqTo: unit.windowSeqTo,
      framesAnalyzed: windowAnalysed,
      score: outcome.score,
      state: asState(outcome.state),
      signals: outcome.signals,
    });
    this.hooks.onResult?.(session, 'window');
  }
}

function asState(s: string): State {
  return (STATES as readonly string[]).includes(s) ? (s as State) : 'unknown';
}
