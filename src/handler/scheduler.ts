import type { AnalyseMeta } from '../ipc/codec.js';
import type { ResultBody } from '../ipc/messages.js';
import { WorkerRequestError } from '../ipc/worker.js';
import type { Logger } from '../utils/logger.js';
import { nowMs } from '../utils/timing.js';
import type { FrameBudget, Holder } from './frame-budget.js';
import type { Unit } from './unit-builder.js';

export interface UnitTiming {
  /** From the unit being cut to its (last) sending to a worker. */
  queueMs: number;
  /** From that sending to the answer, model time included. */
  ipcMs: number;
  /** Model time, measured inside the worker. */
  modelMs: number;
}

/** How a unit ended: a worker's result, a failure (after the retry, if any), or no worker needed (shed, closes no window). */
export type UnitAnswer =
  | { kind: 'result'; result: ResultBody; timing: UnitTiming }
  | { kind: 'failed'; error: unknown }
  | { kind: 'skipped' };

/**
 * A session as the scheduler sees it. Its `heldBytes` are what it holds
 * against the frame budget, which the fair share of the budget compares.
 */
export interface UnitOwner extends Holder {
  readonly id: string;
  /** The request for `unit`, made as it leaves for a worker: it carries the context the previous unit returned. */
  request(unit: Unit): AnalyseMeta;
  /** `n` frames of the still queued `unit` were shed: the unit goes on without them. */
  shed(unit: Unit, n: number): void;
  /** `unit` is answered; called once per unit, in the order the session's units were queued. */
  answered(unit: Unit, answer: UnitAnswer): void;
}

/** A worker process as the scheduler uses it (`ipc/worker.ts`). */
export interface SchedulerWorker {
  readonly ready: boolean;
  /** Smoothed model time per unit, ms; Infinity before the first answer. */
  readonly modelMsAvg: number;
  run(meta: AnalyseMeta, frames: Buffer[]): Promise<ResultBody>;
}

/** The worker processes (`ipc/worker-pool.ts`); `worker_ready` whenever one (re)starts. */
export interface WorkerSet {
  workers(): readonly SchedulerWorker[];
  on(event: 'worker_ready', listener: () => void): unknown;
}

export interface SchedulerLimits {
  /** Units with frames a session may have waiting before its oldest is shed. */
  sessionQueueUnits: number;
  /** Bytes of frames a session may have waiting before its oldest unit is shed. */
  sessionQueueBytes: number;
  /** A unit that waited longer than this for a worker loses its frames. */
  maxUnitAgeMs: number;
}

/**
 * Units a worker is sent ahead of its answer: the next ones wait in its
 * channel, so a fast model never idles on a round trip to the server
 * (several ms while the event loop is busy receiving frames). The faster
 * the model, the more of a unit's time the round trip is, hence the more
 * units ahead: 4 under 1 ms a unit (a trivial model), 2 under 5 ms, else 1.
 * A slow model gets one at a time, since another worker may free first
 * (docs/performance.md).
 */
export const lookAhead = (modelMsAvg: number): number => (modelMsAvg < 1 ? 4 : modelMsAvg < 5 ? 2 : 1);

/** Attempts a unit gets when its worker dies under it: the unit may not be at fault. */
const ATTEMPTS_AFTER_CRASH = 2;

interface Entry {
  unit: Unit;
  attempts: number;
}

interface Queue {
  owner: UnitOwner;
  /** Units waiting for a worker, oldest first (a retried one first of all). */
  entries: Entry[];
  /** Image bytes of the waiting units. */
  bytes: number;
  /** The unit at a worker: the next one needs its context. */
  atWorker: Entry | null;
  /** Waiting in the ring for a worker. */
  ringed: boolean;
  /** The session went away; its unit at a worker, if any, still gets answered. */
  closed: boolean;
}

const unitBytes = (unit: Unit) => unit.frames.reduce((n, f) => n + f.image.length, 0);
const imagesOf = (unit: Unit) => unit.frames.map((f) => f.image);
const retriable = (err: unknown) => err instanceof WorkerRequestError && err.failure === 'crash';

/**
 * The one way from the sessions' queues to the workers, and the place of
 * every scheduling decision: which session goes next, which worker it goes
 * to, how many units a worker holds, what is shed and what is retried.
 *
 * - A session has at most one unit at a worker, because each unit needs the
 *   model context the previous one returned; its answers come back in the
 *   order its units were queued.
 * - Sessions with a unit ready wait in a ring and are served round-robin, so
 *   a busy session cannot starve a quiet one: one that gets a unit answered
 *   rejoins at the back.
 * - A ready worker with the fewest units takes the next one, up to
 *   `lookAhead` of its model time.
 * - A unit whose worker died is retried once, first in its session's queue
 *   and its session first in the ring; a second crash, a timeout or a model
 *   error answers it as failed.
 * - When the workers fall behind, load is shed where it hurts least: a unit
 *   that waited longer than `maxUnitAgeMs`, a session's oldest unit past its
 *   queue limits, and, when the global frame budget is full, the oldest unit
 *   of the session holding the most bytes above its fair share. A shed unit
 *   gives up its frames but still travels, empty, when it closes a window
 *   (so the window closes); one that closes none is answered without a
 *   worker, so it never takes a turn from a unit with frames.
 */
export class Scheduler {
  private readonly queues = new Map<UnitOwner, Queue>();
  private readonly ring: Queue[] = [];
  /** Units each worker holds now (sent, not answered): the look-ahead in use. */
  private readonly assigned = new Map<SchedulerWorker, number>();
  private readonly now: () => number;
  private readonly logger: Logger | null;
  private closed = false;
  /** Frames shed since start, for the load monitor. */
  shedTotal = 0;
  /** Frames workers analysed since start, for the load monitor. */
  analysedTotal = 0;

  constructor(
    private readonly workers: WorkerSet,
    private readonly budget: Pick<FrameBudget, 'limitBytes' | 'hasRoom' | 'free'>,
    private readonly limits: SchedulerLimits,
    /** `now` must be the clock units are stamped with (`Unit.createdAt`). */
    options: { now?: () => number; logger?: Logger } = {},
  ) {
    this.now = options.now ?? nowMs;
    this.logger = options.logger ?? null;
    workers.on('worker_ready', () => this.pump());
  }

  /** Queue `unit` of `owner` for a worker; its frames are now the scheduler's to free. */
  enqueue(owner: UnitOwner, unit: Unit): void {
    let q = this.queues.get(owner);
    if (!q) {
      q = { owner, entries: [], bytes: 0, atWorker: null, ringed: false, closed: false };
      this.queues.set(owner, q);
    }
    q.entries.push({ unit, attempts: 0 });
    q.bytes += unitBytes(unit);
    // A shed unit stays in the queue, empty, for its place in the result cadence: only units with frames count.
    while ((this.withFrames(q) > this.limits.sessionQueueUnits || q.bytes > this.limits.sessionQueueBytes) && this.shedOldest(q));
    if (!q.atWorker) this.join(q);
    this.pump();
  }

  /** Nothing of `owner` waits or is at a worker. */
  idle(owner: UnitOwner): boolean {
    const q = this.queues.get(owner);
    return !q || (q.entries.length === 0 && q.atWorker === null);
  }

  /**
   * Forget a session that went away: its waiting units are dropped and
   * their frames freed; returns how many frames that was. A unit already
   * at a worker is still answered.
   */
  remove(owner: UnitOwner): number {
    const q = this.queues.get(owner);
    if (!q) return 0;
    this.queues.delete(owner);
    q.closed = true;
    if (q.ringed) {
      this.ring.splice(this.ring.indexOf(q), 1);
      q.ringed = false;
    }
    let frames = 0;
    for (const { unit } of q.entries.splice(0)) {
      frames += unit.frames.length;
      this.budget.free(owner, imagesOf(unit));
    }
    q.bytes = 0;
    return frames;
  }

  /**
   * Make room in the frame budget for a frame of `bytes` that `requester`
   * wants to add. Each session is entitled to an equal share of the
   * budget: while the requester stays within its share, the oldest queued
   * unit of the session furthest above its share is shed; otherwise the new
   * frame is the one to shed (false). So whoever sends first cannot crowd
   * the others out.
   */
  shedFor(bytes: number, requester: Holder, sessions: number): boolean {
    const share = this.budget.limitBytes / Math.max(1, sessions);
    if (requester.heldBytes + bytes > share) return false;
    while (!this.budget.hasRoom(bytes)) {
      let victim: Queue | null = null;
      for (const q of this.queues.values()) if (q.bytes > 0 && (!victim || q.owner.heldBytes > victim.owner.heldBytes)) victim = q;
      if (!victim || victim.owner.heldBytes <= share || !this.shedOldest(victim)) return false;
    }
    return true;
  }

  /** Units waiting for a worker, over all sessions. */
  queuedUnits(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.entries.length;
    return n;
  }

  /** How long the oldest waiting unit has waited, in ms. */
  oldestWaitMs(now = this.now()): number {
    let oldest = now;
    for (const q of this.queues.values()) if (q.entries.length > 0) oldest = Math.min(oldest, q.entries[0].unit.createdAt);
    return now - oldest;
  }

  /** Units `worker` holds now (sent to it and not answered). */
  unitsAt(worker: SchedulerWorker): number {
    return this.assigned.get(worker) ?? 0;
  }

  /** No more units go out and none is retried (shutdown); answers of units at workers are still delivered. */
  close(): void {
    this.closed = true;
  }

  private withFrames(q: Queue): number {
    let n = 0;
    for (const e of q.entries) if (e.unit.frames.length > 0) n++;
    return n;
  }

  private join(q: Queue, first = false): void {
    if (q.ringed || q.closed || q.entries.length === 0) return;
    q.ringed = true;
    if (first) this.ring.unshift(q);
    else this.ring.push(q);
  }

  private forgetIfDone(q: Queue): void {
    if (q.entries.length === 0 && q.atWorker === null && this.queues.get(q.owner) === q) this.queues.delete(q.owner);
  }

  private shed(q: Queue, unit: Unit): void {
    const n = unit.frames.length;
    q.bytes -= unitBytes(unit);
    this.budget.free(q.owner, imagesOf(unit));
    unit.counts.shed += n;
    unit.frames = [];
    this.shedTotal += n;
    q.owner.shed(unit, n);
  }

  private shedOldest(q: Queue): boolean {
    const oldest = q.entries.find((e) => e.unit.frames.length > 0);
    if (!oldest) return false;
    this.shed(q, oldest.unit);
    return true;
  }

  /** The ready worker with the fewest units, if it may take one more. */
  private freeWorker(): SchedulerWorker | null {
    let best: SchedulerWorker | null = null;
    let bestUnits = Infinity;
    for (const w of this.workers.workers()) {
      if (!w.ready) continue;
      const units = this.unitsAt(w);
      if (units < lookAhead(w.modelMsAvg) && units < bestUnits) {
        best = w;
        bestUnits = units;
      }
    }
    return best;
  }

  private pump(): void {
    while (!this.closed && this.ring.length > 0) {
      const worker = this.freeWorker();
      if (!worker) return;
      const q = this.ring.shift()!;
      q.ringed = false;
      const entry = this.next(q);
      if (entry) this.dispatch(q, entry, worker);
    }
  }

  /** The session's next unit for a worker; stale frames are shed and units needing no worker answered on the way. */
  private next(q: Queue): Entry | null {
    const now = this.now();
    while (!q.closed && q.entries.length > 0) {
      const entry = q.entries.shift()!;
      const unit = entry.unit;
      if (unit.frames.length > 0 && now - unit.createdAt > this.limits.maxUnitAgeMs) this.shed(q, unit);
      q.bytes -= unitBytes(unit);
      if (unit.frames.length > 0 || unit.closesWindow) return entry;
      this.answer(q, entry, { kind: 'skipped' });
    }
    this.forgetIfDone(q);
    return null;
  }

  private dispatch(q: Queue, entry: Entry, worker: SchedulerWorker): void {
    q.atWorker = entry;
    entry.attempts++;
    this.assigned.set(worker, this.unitsAt(worker) + 1);
    const { unit } = entry;
    const images = imagesOf(unit);
    const sentAt = this.now();
    let run: Promise<ResultBody>;
    try {
      run = worker.run(q.owner.request(unit), images);
    } catch (err) {
      run = Promise.reject(err);
    }
    run
      .then(
        (result) => {
          const timing = { queueMs: sentAt - unit.createdAt, ipcMs: this.now() - sentAt, modelMs: result.modelMs };
          this.settle(q, entry, worker, { kind: 'result', result, timing });
        },
        (error: unknown) => this.settle(q, entry, worker, { kind: 'failed', error }),
      )
      .catch((err: unknown) => this.logger?.error({ event: 'error', sessionId: q.owner.id, err }, 'settling a unit failed'));
  }

  private settle(q: Queue, entry: Entry, worker: SchedulerWorker, answer: UnitAnswer): void {
    const held = this.unitsAt(worker) - 1;
    if (held > 0) this.assigned.set(worker, held);
    else this.assigned.delete(worker);
    q.atWorker = null;
    if (answer.kind === 'failed' && retriable(answer.error) && entry.attempts < ATTEMPTS_AFTER_CRASH && !this.closed && !q.closed) {
      q.entries.unshift(entry);
      q.bytes += unitBytes(entry.unit);
      this.join(q, true);
    } else {
      if (answer.kind === 'result') for (const f of answer.result.frames) if (f.analysed) this.analysedTotal++;
      this.answer(q, entry, answer);
      // The worker has read these frames (or the unit is given up): nothing refers to them now.
      this.budget.free(q.owner, imagesOf(entry.unit));
      this.join(q);
      this.forgetIfDone(q);
    }
    this.pump();
  }

  private answer(q: Queue, entry: Entry, answer: UnitAnswer): void {
    // Whatever throws on the way to the session is a server bug: it costs this unit, never the process.
    try {
      q.owner.answered(entry.unit, answer);
    } catch (err) {
      this.logger?.error({ event: 'error', sessionId: q.owner.id, seqFrom: entry.unit.seqFrom, err }, "a unit's result could not be delivered");
    }
  }
}
