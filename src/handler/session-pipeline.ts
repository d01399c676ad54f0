import type { Config } from '../config/config.js';
import type { OpenMeta } from '../ipc/codec.js';
import type { OutcomeBody, ResultBody } from '../ipc/messages.js';
import { WorkerRequestError } from '../ipc/worker.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import type { AlignMessage, NoticeMessage, ServerMessage, SummaryInput } from '../protocol/server-messages.js';
import type { SessionRecord } from '../protocol/session-record.js';
import type { Logger } from '../utils/logger.js';
import { nowMs } from '../utils/timing.js';
import { ClockCheck } from './clock.js';
import { errorMessage, errorSpec, type ErrorCode } from './errors.js';
import type { FrameBudget } from './frame-budget.js';
import { parseFrame } from './frame-header.js';
import { inspectJpeg, type ImageLimits } from './jpeg.js';
import type { DropReason, FrameOutcomes, State } from './outcomes.js';
import { RateLimiter, WindowCounter } from './rate-limiter.js';
import { modelErrorOutcome, noOutcome, unitBatchResult, unitWindowResult } from './result-messages.js';
import { ReorderBuffer, type ReorderEvent, type Slot } from './reorder-buffer.js';
import type { Scheduler, UnitAnswer, UnitOwner, UnitTiming } from './scheduler.js';
import type { UnitAlignment } from './unit-alignment.js';
import { UnitBuilder, type FrameEntry, type Unit, type UnitBuilderState } from './unit-builder.js';

/** Where a pipeline's output goes: given by the session that owns the connection. */
export interface PipelineSink {
  /** A message for the client. */
  send(msg: ServerMessage): void;
  /** Close the client's connection (a client that keeps sending too fast). */
  close(code: number, reason: string): void;
  /** A unit was answered and its results sent: the checkpoint moved. */
  settled(): void;
}

/**
 * Where a session stands at its last answered unit: what a stored record
 * keeps of the pipeline, and what a pipeline resumed elsewhere starts from.
 */
export type PipelineCheckpoint = Pick<
  SessionRecord,
  | 'expectedSeq'
  | 'accountedSeqs'
  | 'builder'
  | 'context'
  | 'nextResultId'
  | 'windowAnalysed'
  | 'outcomes'
  | 'stateSeconds'
  | 'scoreSum'
  | 'scoreFrames'
>;

/**
 * What the pipeline knows of a session's `summary`: the raw terms, which
 * `summaryMessage` (src/protocol/server-messages.ts) sums, rounds and
 * averages.
 */
export type PipelineFigures = Omit<SummaryInput, 'sessionId' | 'userId' | 'durationMs'>;

/** Observers of the frame path (metrics, logs), called with the session's id. */
export interface PipelineHooks {
  onReceived?(sessionId: string, bytes: number): void;
  onRejected?(sessionId: string, code: ErrorCode): void;
  onDropped?(sessionId: string, reason: DropReason, n: number): void;
  onAligned?(sessionId: string, delayMs: number): void;
  /** Once per unit a worker answered. */
  onUnitDone?(sessionId: string, unit: Unit, timing: UnitTiming): void;
  /** Every result message sent. */
  onResult?(sessionId: string, kind: 'batch' | 'window', unit: Unit): void;
  onAnalysed?(sessionId: string, n: number): void;
}

export interface PipelineDeps {
  config: Config;
  budget: FrameBudget;
  scheduler: Scheduler;
  logger: Logger;
  /** Sessions open on this instance, for each one's share of the frame budget. */
  sessions: () => number;
  hooks?: PipelineHooks;
  /** Spreads the sessions' units over the period (absent: ALIGN_UNITS off). */
  alignment?: UnitAlignment<SessionPipeline> | null;
  /** The monotonic clock; the scheduler's must be the same. */
  now?: () => number;
}

/** What every pipeline of the instance shares. */
interface Shared extends Required<Omit<PipelineDeps, 'alignment'>> {
  alignment: UnitAlignment<SessionPipeline> | null;
  limits: ImageLimits;
  /** Pipelines with frames waiting for a missing seq. */
  waiting: Set<SessionPipeline>;
}

/** Logged rejections per session; past it they are only counted, so a bad client cannot flood the log. */
const REJECTION_LOG_LIMIT = 20;
/** At most one rate_limited notice per session in this many ms. */
const RATE_NOTICE_INTERVAL_MS = 10_000;
/** Window of the rate-abuse count (RATE_ABUSE_FRAMES). */
const RATE_ABUSE_WINDOW_MS = 10_000;

const sum = (o: Partial<Record<string, number>>) => Object.values(o).reduce((a: number, b) => a + (b ?? 0), 0);

/**
 * The pipelines of this instance's sessions: what they share (limits, the
 * frame budget, the scheduler, unit alignment, hooks, the log) and the one
 * timer that releases frames waiting for a missing seq.
 */
export class Pipelines {
  private readonly shared: Shared;
  private readonly timer: NodeJS.Timeout;

  constructor(deps: PipelineDeps) {
    const { config } = deps;
    this.shared = {
      ...deps,
      hooks: deps.hooks ?? {},
      alignment: deps.alignment ?? null,
      now: deps.now ?? nowMs,
      limits: { maxWidth: config.MAX_IMAGE_WIDTH, maxHeight: config.MAX_IMAGE_HEIGHT },
      waiting: new Set(),
    };
    // Frames waiting for a missing seq are released by time as well as by arrival.
    this.timer = setInterval(() => this.pollReorder(), Math.max(20, Math.min(100, config.REORDER_MAX_WAIT_MS / 2)));
    this.timer.unref();
  }

  /** The pipeline of session `sessionId`, new or going on from `restored`. Opening one has no other effect. */
  open(sessionId: string, sink: PipelineSink, restored?: PipelineCheckpoint): SessionPipeline {
    return new SessionPipeline(sessionId, this.shared, sink, restored);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private pollReorder(): void {
    const now = this.shared.now();
    for (const p of this.shared.waiting) p.pollReorder(now);
  }
}

/**
 * One session's frame path, from a binary message to result messages, and
 * every stage and figure of it: rate limit, clock check, reorder buffer,
 * unit builder, the context carried from unit to unit, result ids, the open
 * window's count and the outcome of every frame. Each message goes, in this
 * order, through the rate limit, the header check, the JPEG structure check,
 * the clock check, the global byte budget, the reorder buffer and the unit
 * builder; units go to the scheduler, and what the workers answer comes back
 * here. Every frame ends counted: analysed, rejected with an error naming
 * its seq, or dropped with a reason.
 *
 * Output leaves only through the sink given at construction.
 */
export class SessionPipeline {
  private readonly rate: RateLimiter;
  private readonly rateAbuse = new WindowCounter(RATE_ABUSE_WINDOW_MS);
  /** Monotonic ms of the last rate_limited notice sent. */
  private rateNoticeAt = -Infinity;
  private currentFps: number;
  private readonly clock: ClockCheck;
  private readonly reorder: ReorderBuffer<FrameEntry>;
  private readonly units: UnitBuilder;
  private readonly outcomes: FrameOutcomes = { received: 0, analysed: 0, rejected: {}, dropped: {}, lost: 0, resyncs: 0 };
  private context: unknown = null;
  private resultId = 1;
  /** Frames analysed so far in the open window. */
  private windowAnalysed = 0;
  /** Seconds spent in each state, from batch results. */
  private readonly stateSeconds: Record<State, number> = { focused: 0, distracted: 0, drowsy: 0, absent: 0, unknown: 0 };
  private scoreSum = 0;
  private scoreFrames = 0;
  /** Where the last answered unit left the session. */
  private settledAt: { expectedSeq: number | null; builder: UnitBuilderState | null } = { expectedSeq: null, builder: null };
  private rejectionsLogged = 0;
  private closed = false;
  /** The last unit handed to the scheduler: units are queued as they open, and cut later. */
  private lastQueued: Unit | null = null;
  /** The session as the scheduler and the frame budget see it. */
  private readonly owner: UnitOwner;

  constructor(
    readonly sessionId: string,
    private readonly shared: Shared,
    private readonly sink: PipelineSink,
    restored?: PipelineCheckpoint,
  ) {
    const c = shared.config;
    this.currentFps = c.FPS;
    this.rate = new RateLimiter(c.FPS, c.RATE_BURST_FRAMES);
    this.clock = new ClockCheck(c.CAPTURE_TS_TOLERANCE_MS);
    this.reorder = new ReorderBuffer({ maxFrames: c.REORDER_MAX_FRAMES, maxWaitMs: c.REORDER_MAX_WAIT_MS, resyncGap: c.RESYNC_GAP_FRAMES });
    this.units = new UnitBuilder(c.BATCH_FRAMES, c.WINDOW_FRAMES);
    this.owner = {
      id: sessionId,
      heldBytes: 0,
      open: (unit) => this.openMeta(unit),
      shed: (_unit, n) => this.drop('shed', n),
      answered: (unit, answer) => this.answered(unit, answer),
    };
    if (restored) this.restore(restored);
  }

  /** fps the client was last told to send at (welcome or throttle). */
  get fps(): number {
    return this.currentFps;
  }

  /** Hold the client to `fps` from now on; false when it already is. */
  throttle(fps: number): boolean {
    if (fps === this.currentFps) return false;
    this.currentFps = fps;
    this.rate.setRate(fps);
    return true;
  }

  /** Frame messages received so far. */
  get framesReceived(): number {
    return this.outcomes.received;
  }

  /** The resultId the next result will carry. */
  get nextResultId(): number {
    return this.resultId;
  }

  /** Nothing is queued or at a worker. */
  get idle(): boolean {
    return this.shared.scheduler.idle(this.owner);
  }

  /** One binary message from the client. */
  receive(data: Buffer): void {
    if (this.closed) return;
    const { config, hooks, budget, scheduler } = this.shared;
    const now = this.shared.now();
    this.outcomes.received++;
    hooks.onReceived?.(this.sessionId, data.length);

    const parsed = parseFrame(data, config.MAX_FRAME_BYTES);
    if (!this.rate.take(now)) {
      this.rateLimited(now);
      // Its seq slot is taken, so the frame is not counted lost as well.
      if (parsed.ok) this.place({ seq: parsed.header.seq, captureTs: parsed.header.captureTs, item: null, refused: 'rateLimited' }, now);
      else this.units.note('rateLimited');
      return;
    }
    if (!parsed.ok) {
      this.refuse(parsed.code, parsed.seq, parsed.detail, false);
      return;
    }
    const { header, image } = parsed;
    const jpeg = inspectJpeg(image, this.shared.limits);
    if (!jpeg.ok) {
      this.refuse(jpeg.code, header.seq, jpeg.detail, true, header.captureTs);
      return;
    }
    const clock = this.clock.check(header.seq, header.captureTs, Date.now());
    if (!clock.ok) {
      this.refuse('timestamp_invalid', header.seq, clock.detail!, true, header.captureTs);
      return;
    }
    if (!budget.hasRoom(image.length) && !scheduler.shedFor(image.length, this.owner, this.shared.sessions())) {
      this.drop('shed');
      this.place({ seq: header.seq, captureTs: header.captureTs, item: null, refused: 'shed' }, now);
      return;
    }
    const entry: FrameEntry = {
      seq: header.seq,
      captureTs: header.captureTs,
      format: header.format,
      width: jpeg.width,
      height: jpeg.height,
      image: budget.admit(this.owner, image),
      receivedAt: now,
    };
    const verdict = this.place({ seq: entry.seq, captureTs: entry.captureTs, item: entry }, now);
    if (verdict === 'duplicate' || verdict === 'late') {
      budget.free(this.owner, [entry.image]);
      this.drop(verdict);
      this.units.note(verdict);
      if (verdict === 'late') this.outcomes.lost--;
    }
  }

  /**
   * Hand on every frame held and cut the open batch into a unit: at the end
   * of a session (`closeWindow`), or when draining (the window stays open:
   * the session goes on elsewhere in the same alignment).
   */
  handOn(closeWindow: boolean): void {
    if (this.closed) return;
    const now = this.shared.now();
    this.forward(this.reorder.drain(), now);
    const unit = closeWindow ? this.units.flush(now) : this.units.cutPartial(now);
    if (unit) this.queue(unit);
    this.shared.scheduler.update(this.owner);
    this.shared.waiting.delete(this);
  }

  /**
   * The session went away: every frame it holds is dropped as
   * `session_closed` and freed. A unit already at a worker is still
   * answered.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const { waiting, alignment, budget, scheduler } = this.shared;
    waiting.delete(this);
    alignment?.forget(this);
    const held = this.reorder.heldItems();
    budget.free(this.owner, held.map((f) => f.image));
    this.drop('session_closed', held.length);
    // The open unit is cut as it stands, so what its worker already has is answered.
    this.units.cutPartial(this.shared.now());
    this.drop('session_closed', scheduler.remove(this.owner));
  }

  /** Frames waiting for a missing seq longer than allowed go on (`Pipelines` calls it). */
  pollReorder(now: number): void {
    this.forward(this.reorder.poll(now), now);
    if (this.reorder.size === 0) this.shared.waiting.delete(this);
  }

  /** The pipeline's part of the session's record, at its checkpoint. */
  checkpoint(): PipelineCheckpoint {
    const o = this.outcomes;
    const settled = o.analysed + sum(o.rejected) + sum(o.dropped);
    return {
      expectedSeq: this.settledAt.expectedSeq,
      accountedSeqs: this.reorder.accountedFrom(this.settledAt.expectedSeq),
      builder: this.settledAt.builder,
      context: this.context,
      nextResultId: this.resultId,
      windowAnalysed: this.windowAnalysed,
      // Frames received after the checkpoint have no outcome yet: a session that resumes elsewhere counts them lost, once.
      outcomes: { ...o, received: settled, rejected: { ...o.rejected }, dropped: { ...o.dropped } },
      stateSeconds: { ...this.stateSeconds },
      scoreSum: this.scoreSum,
      scoreFrames: this.scoreFrames,
    };
  }

  /** The figures so far (a copy). */
  figures(): PipelineFigures {
    const o = this.outcomes;
    return {
      outcomes: { ...o, rejected: { ...o.rejected }, dropped: { ...o.dropped } },
      clockSkewMs: this.clock.skewMs,
      results: this.resultId - 1,
      scoreSum: this.scoreSum,
      scoreFrames: this.scoreFrames,
      stateSeconds: { ...this.stateSeconds },
    };
  }

  private restore(r: PipelineCheckpoint): void {
    Object.assign(this.outcomes, r.outcomes, { rejected: { ...r.outcomes.rejected }, dropped: { ...r.outcomes.dropped } });
    Object.assign(this.stateSeconds, r.stateSeconds);
    this.scoreSum = r.scoreSum;
    this.scoreFrames = r.scoreFrames;
    this.context = r.context;
    this.resultId = r.nextResultId;
    this.windowAnalysed = r.windowAnalysed;
    this.reorder.expect(r.expectedSeq, r.accountedSeqs ?? []);
    if (r.builder) this.units.restore(r.builder);
    this.settledAt = { expectedSeq: r.expectedSeq, builder: r.builder };
  }

  private place(slot: Slot<FrameEntry>, now: number) {
    const { verdict, events } = this.reorder.push(slot, now);
    this.forward(events, now);
    if (this.reorder.size > 0) this.shared.waiting.add(this);
    else this.shared.waiting.delete(this);
    return verdict;
  }

  private forward(events: ReorderEvent<FrameEntry>[], now: number): void {
    if (events.length === 0) return;
    for (const e of events) {
      if (e.kind === 'lost') this.outcomes.lost += e.seqTo - e.seqFrom + 1;
      else if (e.kind === 'resync') {
        this.outcomes.resyncs++;
        this.shared.logger.info({ event: 'resync', sessionId: this.sessionId, fromSeq: e.fromSeq, toSeq: e.toSeq }, 'seq re-synced');
      }
    }
    for (const unit of this.units.consume(events, now)) {
      this.queue(unit);
      this.align(unit.frames.length, now);
    }
    const open = this.units.open;
    if (open) this.queue(open);
    this.shared.scheduler.update(this.owner);
  }

  /** Hand `unit` to the scheduler, once: it is queued when it opens, and its frames go to a worker as they come. */
  private queue(unit: Unit): void {
    if (unit === this.lastQueued) return;
    this.lastQueued = unit;
    this.shared.scheduler.enqueue(this.owner, unit);
  }

  /** A unit was cut at `now`: ask the client to shift its capture when its units crowd another session's. */
  private align(frames: number, now: number): void {
    const { alignment, config } = this.shared;
    if (!alignment) return;
    // Only whole units at the full fps keep the period; a throttled or lossy session holds no phase.
    if (this.currentFps !== config.FPS || frames !== config.BATCH_FRAMES) {
      alignment.forget(this);
      return;
    }
    const delayMs = alignment.observe(this, now);
    if (delayMs === null) return;
    this.sink.send({ type: 'align', delayMs } satisfies AlignMessage);
    this.shared.hooks.onAligned?.(this.sessionId, delayMs);
  }

  private rateLimited(now: number): void {
    this.drop('rate_limited');
    if (this.rateAbuse.add(now) > this.shared.config.RATE_ABUSE_FRAMES) {
      this.shared.logger.warn({ event: 'rate_abuse', sessionId: this.sessionId }, 'closing a session that keeps sending too fast');
      this.sink.send(errorMessage('rate_limited'));
      this.sink.close(errorSpec('rate_limited').closeCode ?? CLOSE_CODES.policy_violation.code, 'rate_limited');
      return;
    }
    if (now - this.rateNoticeAt >= RATE_NOTICE_INTERVAL_MS) {
      this.rateNoticeAt = now;
      this.sink.send({
        type: 'notice',
        code: 'rate_limited',
        fps: this.rate.rate,
        message: `frames above ${this.rate.rate} fps are dropped; send at most ${this.rate.rate} frames a second`,
      } satisfies NoticeMessage);
    }
  }

  private drop(reason: DropReason, n = 1): void {
    if (n <= 0) return;
    this.outcomes.dropped[reason] = (this.outcomes.dropped[reason] ?? 0) + n;
    this.shared.hooks.onDropped?.(this.sessionId, reason, n);
  }

  private reject(code: ErrorCode): void {
    this.outcomes.rejected[code] = (this.outcomes.rejected[code] ?? 0) + 1;
    this.shared.hooks.onRejected?.(this.sessionId, code);
  }

  /** A frame refused by the checks: counted, its error sent, logged (up to a limit). */
  private refuse(code: ErrorCode, seq: number | undefined, detail: string, hasSlot: boolean, captureTs = 0): void {
    this.reject(code);
    this.sink.send(errorMessage(code, { seq }));
    // A refused frame whose header was sound keeps its seq slot, so it is
    // not counted lost as well; one with a broken header has no trustworthy seq.
    if (hasSlot && seq !== undefined) this.place({ seq, captureTs, item: null, refused: 'rejected' }, this.shared.now());
    else this.units.note('rejected');
    const n = ++this.rejectionsLogged;
    if (n <= REJECTION_LOG_LIMIT) {
      this.shared.logger[errorSpec(code).logLevel](
        { event: 'frame_rejected', sessionId: this.sessionId, code, seq, detail, sampled: n === REJECTION_LOG_LIMIT },
        'frame rejected',
      );
    }
  }

  private openMeta(_unit: Unit): OpenMeta {
    const c = this.shared.config;
    return { session: this.sessionId, batchFrames: c.BATCH_FRAMES, windowFrames: c.WINDOW_FRAMES, fps: c.FPS, context: this.context };
  }

  private answered(unit: Unit, answer: UnitAnswer): void {
    try {
      if (answer.kind === 'result') {
        this.shared.hooks.onUnitDone?.(this.sessionId, unit, answer.timing);
        this.deliver(unit, answer.result);
      } else if (answer.kind === 'failed') this.fail(unit, answer.error);
      else this.sendBatch(unit, noOutcome(), 0, []);
    } finally {
      // Answered, however: everything up to its last seq is settled.
      this.settledAt = { expectedSeq: unit.seqTo + 1, builder: unit.after };
      this.sink.settled();
    }
  }

  private deliver(unit: Unit, result: ResultBody): void {
    this.context = result.context ?? null;
    const frames = result.frames;
    let analysed = 0;
    for (let i = 0; i < frames.length; i++) {
      if (frames[i].analysed) {
        analysed++;
        continue;
      }
      this.reject('image_undecodable');
      unit.counts.rejected++;
      if (unit.windowCounts) unit.windowCounts.rejected++;
      this.sink.send(errorMessage('image_undecodable', { seq: unit.frames[i]?.seq }));
    }
    this.outcomes.analysed += analysed;
    this.shared.hooks.onAnalysed?.(this.sessionId, analysed);
    this.sendBatch(unit, result.batch, analysed, frames);
    if (unit.closesWindow) this.sendWindow(unit, result.window ?? noOutcome());
  }

  private fail(unit: Unit, err: unknown): void {
    const failure = err instanceof WorkerRequestError ? err.failure : 'crash';
    this.shared.logger.warn(
      { event: 'error', sessionId: this.sessionId, seqFrom: unit.seqFrom, seqTo: unit.seqTo, failure, err },
      'unit not analysed',
    );
    this.drop('model_error', unit.frames.length);
    this.sink.send(errorMessage('model_error', { seq: unit.seqFrom }));
    const none = modelErrorOutcome();
    this.sendBatch(unit, none, 0, []);
    if (unit.closesWindow) this.sendWindow(unit, none);
  }

  private sendBatch(unit: Unit, outcome: OutcomeBody, analysed: number, frames: ResultBody['frames']): void {
    this.windowAnalysed += analysed;
    if (unit.slots === 0) return; // a unit that only closes the window at the end of a session
    if (outcome.score !== null && analysed > 0) {
      this.scoreSum += outcome.score * analysed;
      this.scoreFrames += analysed;
    }
    this.stateSeconds[outcome.state] += unit.slots / this.shared.config.FPS;
    this.sink.send(unitBatchResult(unit, this.resultId++, outcome, analysed, frames));
    this.shared.hooks.onResult?.(this.sessionId, 'batch', unit);
  }

  private sendWindow(unit: Unit, outcome: OutcomeBody): void {
    const analysed = this.windowAnalysed;
    this.windowAnalysed = 0;
    this.sink.send(unitWindowResult(unit, this.resultId++, outcome, analysed));
    this.shared.hooks.onResult?.(this.sessionId, 'window', unit);
  }
}
