import { randomUUID } from 'node:crypto';
import { ClockCheck } from '../handler/clock.js';
import type { ErrorCode } from '../handler/errors.js';
import type { DropReason, FrameOutcomes, State } from '../handler/outcomes.js';
import type { OutboundMessage } from '../protocol/messages.js';
import { RateLimiter, WindowCounter } from '../handler/rate-limiter.js';
import { ReorderBuffer } from '../handler/reorder-buffer.js';
import { UnitBuilder, type FrameEntry, type Unit, type UnitBuilderState } from '../handler/unit-builder.js';
import { storedTokenHash } from './resume-token.js';
import type { SessionRecord } from './session-store.js';

export { DROP_REASONS, STATES, type DropReason, type FrameOutcomes, type State } from '../handler/outcomes.js';
export type { OutboundMessage } from '../protocol/messages.js';

export interface SessionOptions {
  fps: number;
  batchFrames: number;
  windowFrames: number;
  reorderMaxFrames: number;
  reorderMaxWaitMs: number;
  resyncGapFrames: number;
  rateBurstFrames: number;
  captureTsToleranceMs: number;
}

/** Window results kept per session: an hour at the default 10 s window. */
export const WINDOWS_KEPT = 360;
/** Messages kept for a detached client; results beyond it are lost to it (they stay in `windows`). */
const UNDELIVERED_KEPT = 200;
/** Latest results kept for redelivery after a resume on another instance: about 20 s. */
const RECENT_KEPT = 24;

const sum = (o: Partial<Record<string, number>>) => Object.values(o).reduce((a: number, b) => a + (b ?? 0), 0);

/**
 * One student's session: the per-session stages of the frame path (rate
 * limit, clock check, reorder buffer, unit builder, queue for a worker),
 * the model context carried between units, the result sequence and the
 * outcome of every frame. The connection it is attached to is reached only
 * through `send` and `disconnect`.
 */
export class Session {
  readonly id: string;
  readonly createdAt: number = Date.now();
  readonly outcomes: FrameOutcomes = { received: 0, analysed: 0, rejected: {}, dropped: {}, lost: 0, resyncs: 0 };
  readonly reorder: ReorderBuffer<FrameEntry>;
  readonly units: UnitBuilder;
  readonly rate: RateLimiter;
  readonly clock: ClockCheck;
  readonly rateAbuse = new WindowCounter(10_000);
  /** Monotonic ms of the last rate_limited notice sent. */
  rateNoticeAt = -Infinity;
  /** fps the client was last told to send at (welcome or throttle). */
  fps: number;
  /** Units cut and waiting for a worker, oldest first, and their image bytes. */
  readonly queue: Unit[] = [];
  queuedBytes = 0;
  /** Bytes of frames this session holds anywhere, against the global budget. */
  heldBytes = 0;
  /** A unit is at a worker: the next one needs its context. */
  inFlight = false;
  context: unknown = null;
  nextResultId = 1;
  /** Frames analysed so far in the open window. */
  windowAnalysed = 0;
  /** Seconds spent in each state, from batch results. */
  readonly stateSeconds: Record<State, number> = { focused: 0, distracted: 0, drowsy: 0, absent: 0, unknown: 0 };
  private scoreSum = 0;
  private scoreFrames = 0;
  ending = false;
  closed = false;
  /** Attached to a connection now (false while waiting for the client to resume). */
  attached = true;
  /** Messages produced while detached, delivered on resume (oldest dropped past the bound). */
  readonly undelivered: OutboundMessage[] = [];
  /** Window results of the session, newest last (for GET /v1/sessions/:id). */
  readonly windows: OutboundMessage[] = [];
  /** The latest results, for a client that resumes on another instance. */
  readonly recent: OutboundMessage[] = [];
  /** Where the last answered unit left the session: the point a stored record describes. */
  checkpoint: { expectedSeq: number | null; builder: UnitBuilderState | null } = { expectedSeq: null, builder: null };
  private sendToConnection: (msg: OutboundMessage) => void = () => {};
  disconnect: (code: number, reason: string) => void = () => {};

  /** When the connection went away without `bye` (ms since the epoch), while detached. */
  detachedAt: number | null = null;

  constructor(
    readonly opts: SessionOptions,
    /** Owner, from the client's token (`demo` in demo mode). */
    readonly userId: string,
    /** SHA-256 (hex) of the secret the client shows to resume this session; replaced at every resume. */
    public resumeTokenHash: string,
    id: string = randomUUID(),
  ) {
    this.id = id;
    this.fps = opts.fps;
    this.reorder = new ReorderBuffer({
      maxFrames: opts.reorderMaxFrames,
      maxWaitMs: opts.reorderMaxWaitMs,
      resyncGap: opts.resyncGapFrames,
    });
    this.units = new UnitBuilder(opts.batchFrames, opts.windowFrames);
    this.rate = new RateLimiter(opts.fps, opts.rateBurstFrames);
    this.clock = new ClockCheck(opts.captureTsToleranceMs);
  }

  /** Send to the client, or keep for it while it is away. */
  send(msg: OutboundMessage): void {
    if (msg.type === 'result') {
      this.recent.push(msg);
      if (this.recent.length > RECENT_KEPT) this.recent.shift();
      if (msg.kind === 'window') {
        this.windows.push(msg);
        if (this.windows.length > WINDOWS_KEPT) this.windows.shift();
      }
    }
    if (this.attached) {
      this.sendToConnection(msg);
      return;
    }
    this.undelivered.push(msg);
    if (this.undelivered.length > UNDELIVERED_KEPT) this.undelivered.shift();
  }

  /**
   * Bind to a connection. A resuming client first gets the results it may
   * have missed: those kept while it was away and the latest ones sent
   * before (which may have died with the old socket), each once, in
   * resultId order, above `lastResultId` when it says what it has.
   */
  attach(send: (msg: OutboundMessage) => void, disconnect: (code: number, reason: string) => void, replay?: { lastResultId?: number }): void {
    this.sendToConnection = send;
    this.disconnect = disconnect;
    this.attached = true;
    this.detachedAt = null;
    const kept = this.undelivered.splice(0);
    if (!replay) return;
    const results = new Map<number, OutboundMessage>();
    for (const msg of [...this.recent, ...kept]) {
      const id = msg.resultId;
      if (msg.type === 'result' && typeof id === 'number' && (replay.lastResultId === undefined || id > replay.lastResultId)) results.set(id, msg);
    }
    for (const id of [...results.keys()].sort((a, b) => a - b)) send(results.get(id)!);
    for (const msg of kept) if (msg.type !== 'result') send(msg);
  }

  detach(): void {
    this.attached = false;
    this.detachedAt = Date.now();
    this.sendToConnection = () => {};
    this.disconnect = () => {};
  }

  reject(code: ErrorCode, n = 1): void {
    this.outcomes.rejected[code] = (this.outcomes.rejected[code] ?? 0) + n;
  }

  drop(reason: DropReason, n = 1): void {
    if (n > 0) this.outcomes.dropped[reason] = (this.outcomes.dropped[reason] ?? 0) + n;
  }

  /** A unit was answered and its results sent: everything up to its last seq is settled. */
  settle(unit: Unit): void {
    this.checkpoint = { expectedSeq: unit.seqTo + 1, builder: unit.after };
  }

  /**
   * The record of this session at its checkpoint. Frames received after it
   * have no outcome yet; they are left out of `received`, so a session that
   * resumes elsewhere counts them lost, once.
   */
  toRecord(): SessionRecord {
    const o = this.outcomes;
    const settled = o.analysed + sum(o.rejected) + sum(o.dropped);
    return {
      v: 1,
      id: this.id,
      userId: this.userId,
      resumeTokenHash: this.resumeTokenHash,
      createdAt: this.createdAt,
      expectedSeq: this.checkpoint.expectedSeq,
      accountedSeqs: this.reorder.accountedFrom(this.checkpoint.expectedSeq),
      builder: this.checkpoint.builder,
      context: this.context,
      nextResultId: this.nextResultId,
      windowAnalysed: this.windowAnalysed,
      outcomes: { ...o, received: settled, rejected: { ...o.rejected }, dropped: { ...o.dropped } },
      stateSeconds: { ...this.stateSeconds },
      scoreSum: this.scoreSum,
      scoreFrames: this.scoreFrames,
      recent: [...this.recent],
      windows: [...this.windows],
      ended: this.ending,
      updatedAt: Date.now(),
    };
  }

  /**
   * What is kept of the session once it ended, for GET /v1/sessions/:id:
   * its figures and window history. An ended session cannot be resumed, so
   * the results kept for a replay (per-frame signals among them), the
   * model's context and the open unit are not kept with it.
   */
  endedRecord(): SessionRecord {
    return { ...this.toRecord(), ended: true, recent: [], context: null, builder: null, accountedSeqs: [] };
  }

  /** A session going on from its stored record (resumed on this instance). */
  static fromRecord(opts: SessionOptions, r: SessionRecord): Session {
    const s = new Session(opts, r.userId, storedTokenHash(r) ?? '', r.id);
    (s as { createdAt: number }).createdAt = r.createdAt;
    Object.assign(s.outcomes, r.outcomes, { rejected: { ...r.outcomes.rejected }, dropped: { ...r.outcomes.dropped } });
    Object.assign(s.stateSeconds, r.stateSeconds);
    s.scoreSum = r.scoreSum;
    s.scoreFrames = r.scoreFrames;
    s.context = r.context;
    s.nextResultId = r.nextResultId;
    s.windowAnalysed = r.windowAnalysed;
    s.recent.push(...r.recent);
    s.windows.push(...r.windows);
    s.reorder.expect(r.expectedSeq, r.accountedSeqs ?? []);
    if (r.builder) s.units.restore(r.builder);
    s.checkpoint = { expectedSeq: r.expectedSeq, builder: r.builder };
    return s;
  }

  /** Fold a batch outcome into the summary figures. */
  recordBatch(score: number | null, state: State, framesAnalysed: number, slots: number): void {
    if (score !== null && framesAnalysed > 0) {
      this.scoreSum += score * framesAnalysed;
      this.scoreFrames += framesAnalysed;
    }
    this.stateSeconds[state] += slots / this.opts.fps;
  }

  /** True when nothing is queued or at a worker. */
  get idle(): boolean {
    return !this.inFlight && this.queue.length === 0;
  }

  /** Frames held anywhere in the session (waiting for order, in the open batch, queued). */
  heldFrames(): FrameEntry[] {
    return [...this.reorder.heldItems(), ...this.units.heldFrames(), ...this.queue.flatMap((u) => u.frames)];
  }

  summary(): OutboundMessage {
    const o = this.outcomes;
    return {
      type: 'summary',
      sessionId: this.id,
      userId: this.userId,
      durationMs: Date.now() - this.createdAt,
      framesReceived: o.received,
      framesAnalyzed: o.analysed,
      framesRejected: sum(o.rejected),
      framesDropped: sum(o.dropped),
      framesLost: o.lost,
      rejected: { ...o.rejected },
      dropped: { ...o.dropped },
      resyncs: o.resyncs,
      clockSkewMs: this.clock.skewMs === null ? null : Math.round(this.clock.skewMs),
      results: this.nextResultId - 1,
      meanScore: this.scoreFrames > 0 ? Math.round((this.scoreSum / this.scoreFrames) * 10) / 10 : null,
      stateSeconds: Object.fromEntries(Object.entries(this.stateSeconds).map(([k, v]) => [k, Math.round(v * 10) / 10])),
    };
  }
}
