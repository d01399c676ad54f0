import type { FrameMeta, OpenMeta } from '../ipc/codec.js';
import type { FrameDoneBody, ResultBody } from '../ipc/messages.js';
import { WorkerRequestError } from '../ipc/worker.js';
import { IndexedHeap } from '../utils/indexed-heap.js';
import type { Logger } from '../utils/logger.js';
import { nowMs } from '../utils/timing.js';
import type { FrameBudget, Holder } from './frame-budget.js';
import type { FrameEntry, Unit } from './unit-builder.js';

export interface UnitTiming {
  /** How long the unit's last frame waited for a worker (a unit without frames: from its cut to its close). */
  queueMs: number;
  /** From the unit's close going to the worker to its result: the last frame's work and the assembly. */
  ipcMs: number;
  /** Model time of the whole unit, measured inside the worker. */
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
  /** What opens `unit` at a worker, made as its first frame leaves: it carries the context the previous unit returned. */
  open(unit: Unit): OpenMeta;
  /** `n` frames of `unit` were shed before reaching a worker: the unit goes on without them. */
  shed(unit: Unit, n: number): void;
  /** `unit` is answered; called once per unit, in the order the session's units were queued. */
  answered(unit: Unit, answer: UnitAnswer): void;
}

/** A unit open at a worker (`ipc/worker.ts`). */
export interface SchedulerStream {
  frame(meta: FrameMeta, image: Buffer): Promise<FrameDoneBody>;
  close(closesWindow: boolean): Promise<ResultBody>;
}

/** A worker process as the scheduler uses it (`ipc/worker.ts`). */
export interface SchedulerWorker {
  readonly ready: boolean;
  /** Smoothed model time per frame, ms; Infinity before the first frame. */
  readonly frameMsAvg: number;
  /** Smoothed model time of a unit's close (its assembly, or all its work for a model that buffers frames), ms; Infinity before the first. */
  readonly closeMsAvg: number;
  open(meta: OpenMeta): SchedulerStream;
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
  /** A frame that waited longer than this for a worker is shed. */
  maxUnitAgeMs: number;
  /** The sessions' nominal frame period (1000 / FPS): a session's frames are served at most this often while others wait. */
  framePeriodMs: number;
  /** Seq slots a unit covers (BATCH_FRAMES): how far a unit's last frame is from each of its frames. */
  batchFrames: number;
}

/**
 * Frames and closes a worker is sent ahead of their work: the next one
 * waits in its channel, so the model never idles on a round trip to the
 * server (a few ms while the event loop is busy receiving frames). Each one
 * ahead adds up to its work to the wait of a frame that arrives meanwhile,
 * so, by the longer of a frame's and a close's time: 4 under 1 ms (a
 * trivial model), 2 under 20 ms, else 1.
 */
export const lookAhead = (workMs: number): number => (workMs < 1 ? 4 : workMs < 20 ? 2 : 1);

/** Attempts a unit gets when its worker dies under it: the unit may not be at fault. */
const ATTEMPTS_AFTER_CRASH = 2;

/** One attempt of a unit at a worker. */
interface Attempt {
  worker: SchedulerWorker;
  stream: SchedulerStream;
  /** Frames of `unit.frames` sent on this attempt (the first ones). */
  sent: number;
  closeSentAt: number | null;
  /** When the last frame sent left, and how long it had waited. */
  lastSentAt: number;
  lastWaitMs: number;
  /** The session's tag before this attempt: a retry is tagged as if the failed attempt never was. */
  tagBefore: number;
}

interface Entry {
  unit: Unit;
  attempts: number;
  /** The attempt under way, if the unit is open at a worker. */
  at: Attempt | null;
  /** Why the unit failed for good; it is answered so once complete. */
  failure: { error: unknown } | null;
}

interface Queue {
  owner: UnitOwner;
  /** The session's units, oldest first; only the first may be at a worker. */
  entries: Entry[];
  /** Fair-queueing tag of the session's last frame sent. */
  lastTag: number;
  /** The session went away; its unit at a worker, if any, still gets answered. */
  closed: boolean;
  /** When the queue was made: of items due alike, the older queue's goes first. */
  order: number;
  /** The lane the queue's next item waits in, and that item's place in it (see `ahead`); null when it has none. */
  lane: Lane | null;
  slot: number;
  rank: number;
  /** When the first frame of its first unit still to go to a worker arrived (Infinity: none): it is shed first when stale. */
  oldestAt: number;
}

/** The queues whose next item goes to one worker (its unit is open there), or to any (`worker` null: its unit is not opened yet). */
interface Lane {
  worker: SchedulerWorker | null;
  queues: IndexedHeap<Queue>;
}

/** The item a queue would send next: a frame (`f`), or else the close of its unit (opened first, when it is empty). */
interface NextItem {
  e: Entry;
  f: FrameEntry | null;
  tag: number;
  /** The worker its unit is open at; null for a unit not opened yet. */
  worker: SchedulerWorker | null;
  slot: number;
  rank: number;
}

const unsent = (e: Entry): FrameEntry[] => e.unit.frames.slice(e.at?.sent ?? 0);
const imagesOf = (frames: readonly FrameEntry[]) => frames.map((f) => f.image);
const retriable = (err: unknown) => err instanceof WorkerRequestError && err.failure === 'crash';
const frameMeta = (f: FrameEntry): FrameMeta => ({ seq: f.seq, captureTs: f.captureTs, format: f.format, width: f.width, height: f.height });

/**
 * Whether queue `a`'s next item goes before `b`'s: the one due first. Each queue holds its item's period
 * (`slot`: its due time ÷ the frame period) and `rank`.
 *
 * An item is due when a result will wait on it. A close and a frame of a
 * complete unit are due at their tag; a frame of a unit still open only
 * when its unit's last frame is expected (one frame period for each seq
 * between them): done any time before, it delays no result. So the last
 * frame of one session's unit goes before the second frame of another's,
 * and a frame never waits behind work that no result waits on yet.
 *
 * Times within the same frame period count as equal, and then the lower
 * rank goes first: a close, then the frame of the session whose last frame
 * sent is oldest (then the older queue's). Of frames that arrive together
 * (a class whose clients capture in step), one whose session's frames were
 * shed goes before one whose session was just served; by arrival alone,
 * the sessions whose messages happen to be read last would be the last
 * served, and the first to go stale, every time.
 */
const ahead = (a: Queue, b: Queue): boolean => (a.slot !== b.slot ? a.slot < b.slot : a.rank !== b.rank ? a.rank < b.rank : a.order < b.order);
/** Whether queue `a`'s first waiting frame arrived before `b`'s. */
const older = (a: Queue, b: Queue): boolean => (a.oldestAt !== b.oldestAt ? a.oldestAt < b.oldestAt : a.order < b.order);

/**
 * The one way from the sessions' frames to the workers, and the place of
 * every scheduling decision: which frame goes next, to which worker, how
 * many frames a worker holds, what is shed and what is retried.
 *
 * - Frames go to a worker as they arrive, and the worker does each frame's
 *   work then; a unit is opened at a worker with its first frame and
 *   closed once it is cut and all its frames are sent, so its result
 *   follows its last frame by one frame's work.
 * - A unit's frames all go to the worker it was opened at (the worker holds
 *   the unit's state), and a session has one unit at a worker at a time:
 *   each unit starts from the context the previous one returned. Answers
 *   come back in the order the session's units were queued.
 * - A free worker takes what is due first over all sessions (`ahead`).
 *   Each frame has a fair-queueing tag: its arrival time, but never less
 *   than one frame period after the tag of its session's previous frame, so
 *   a session that sends a burst (a whole unit at once, a backlog after a
 *   reconnect) is served at its nominal rate while others wait and cannot
 *   crowd them out. A frame is due at its tag once its unit is complete,
 *   and before that when its unit's last frame is expected. A ready worker
 *   holding the fewest frames and closes, then units, takes a unit's first
 *   frame; every worker holds up to `lookAhead` of them.
 * - A unit whose worker died is sent again from its first frame, once, to
 *   the next free worker; a second crash, a timeout or a model error answers
 *   it as failed once it is complete.
 * - When the workers fall behind, load is shed where it hurts least: a frame
 *   that waited longer than `maxUnitAgeMs`, a session's oldest waiting unit
 *   past its queue limits, and, when the global frame budget is full, the
 *   oldest waiting unit of the session holding the most bytes above its fair
 *   share. A unit that lost all its frames still travels, empty, when it
 *   closes a window (so the window closes); one that closes none is answered
 *   without a worker, so it never takes a turn from a frame.
 */
export class Scheduler {
  private readonly queues = new Map<UnitOwner, Queue>();
  /** The last tag of sessions with nothing queued: their place in the fair order when they queue again. */
  private readonly idleTags = new WeakMap<UnitOwner, number>();
  /** Frames and closes each worker holds now (sent, their work not done): the look-ahead in use. */
  private readonly inFlight = new Map<SchedulerWorker, number>();
  /** Units open at each worker: the frames still to come to it. */
  private readonly openUnits = new Map<SchedulerWorker, number>();
  private readonly now: () => number;
  private readonly logger: Logger | null;
  /**
   * Each queue with an item to send, by where it goes: a lane per worker for units open there, and one
   * (key null) for units not opened yet. Finding the item due first is then a look at each lane's head, not
   * a pass over every session, which would run for every frame that arrives or finishes.
   */
  private readonly lanes = new Map<SchedulerWorker | null, Lane>();
  /** The queues with a frame waiting, by when it arrived: the stale ones are shed before each frame goes. */
  private readonly byAge = new IndexedHeap<Queue>(older);
  private queuesMade = 0;
  private closed = false;
  private pumping = false;
  /** Frames shed since start, for the load monitor. */
  shedTotal = 0;
  /** Frames workers analysed since start, for the load monitor. */
  analysedTotal = 0;

  constructor(
    private readonly workers: WorkerSet,
    private readonly budget: Pick<FrameBudget, 'limitBytes' | 'hasRoom' | 'free'>,
    private readonly limits: SchedulerLimits,
    /** `now` must be the clock frames and units are stamped with (`receivedAt`, `createdAt`). */
    options: { now?: () => number; logger?: Logger } = {},
  ) {
    this.now = options.now ?? nowMs;
    this.logger = options.logger ?? null;
    workers.on('worker_ready', () => this.pump());
  }

  /**
   * Queue `unit` of `owner`, open (frames still to come) or complete; its
   * frames, present and to come, are now the scheduler's to free. Call
   * `update` when frames are added to an open unit or it is cut.
   */
  enqueue(owner: UnitOwner, unit: Unit): void {
    let q = this.queues.get(owner);
    if (!q) {
      q = { owner, entries: [], lastTag: this.idleTags.get(owner) ?? -Infinity, closed: false, order: this.queuesMade++, lane: null, slot: 0, rank: 0, oldestAt: Infinity };
      this.queues.set(owner, q);
    }
    q.entries.push({ unit, attempts: 0, at: null, failure: null });
    this.update(owner);
  }

  /** `owner`'s units got frames or were cut: hold its queue to its limits and send what can go. */
  update(owner: UnitOwner): void {
    const q = this.queues.get(owner);
    if (q) {
      // Settled here, not only when a worker has room: a unit that needs no worker is answered at once.
      this.advance(q);
      // An empty unit stays in the queue for its place in the result cadence, and the open one is still
      // being filled: only complete units with frames count.
      let shed = false;
      while ((this.waitingUnits(q) > this.limits.sessionQueueUnits || this.waitingBytes(q) > this.limits.sessionQueueBytes) && this.shedOldest(q)) shed = true;
      // A first unit the limits emptied may need no worker now.
      if (shed) this.advance(q);
      this.reindex(q);
    }
    this.pump();
  }

  /** Nothing of `owner` waits or is at a worker. */
  idle(owner: UnitOwner): boolean {
    const q = this.queues.get(owner);
    return !q || q.entries.length === 0;
  }

  /**
   * Forget a session that went away: the frames it has waiting are dropped
   * and freed; returns how many frames that was. A unit open at a worker is
   * closed with the frames it was sent, and still answered.
   */
  remove(owner: UnitOwner): number {
    const q = this.queues.get(owner);
    if (!q) return 0;
    this.queues.delete(owner);
    q.closed = true;
    this.reindex(q);
    let frames = 0;
    const head = q.entries[0];
    const keep = head?.at ? head : null;
    for (const e of q.entries) {
      const drop = e === keep ? e.unit.frames.splice(e.at!.sent) : e.unit.frames.splice(0);
      frames += drop.length;
      this.budget.free(owner, imagesOf(drop));
    }
    q.entries = keep ? [keep] : [];
    if (keep) {
      // The session is gone: whatever the unit was still waiting for will not come.
      keep.unit.complete = true;
      this.advance(q);
    }
    return frames;
  }

  /**
   * Make room in the frame budget for a frame of `bytes` that `requester`
   * wants to add. Each session is entitled to an equal share of the
   * budget: while the requester stays within its share, the oldest waiting
   * unit of the session furthest above its share is shed; otherwise the new
   * frame is the one to shed (false). So whoever sends first cannot crowd
   * the others out.
   */
  shedFor(bytes: number, requester: Holder, sessions: number): boolean {
    const share = this.budget.limitBytes / Math.max(1, sessions);
    if (requester.heldBytes + bytes > share) return false;
    while (!this.budget.hasRoom(bytes)) {
      let victim: Queue | null = null;
      for (const q of this.queues.values()) if (this.waitingBytes(q) > 0 && (!victim || q.owner.heldBytes > victim.owner.heldBytes)) victim = q;
      if (!victim || victim.owner.heldBytes <= share || !this.shedOldest(victim)) return false;
      this.advance(victim);
    }
    return true;
  }

  /** Units with frames waiting for a worker, over all sessions. */
  queuedUnits(): number {
    let n = 0;
    for (const q of this.queues.values()) for (const e of q.entries) if (!e.failure && (e.at?.sent ?? 0) < e.unit.frames.length) n++;
    return n;
  }

  /**
   * How long the frame furthest behind has waited for a worker since it was
   * due, in ms: since it arrived, for a frame of a complete unit; since its
   * unit's last frame was expected, for a frame of a unit still open (see
   * `ahead`). A frame that no result waits on yet is not late.
   */
  oldestWaitMs(now = this.now()): number {
    let oldest = now;
    for (const q of this.queues.values()) {
      for (const e of q.entries) if (!e.failure) for (const f of unsent(e)) oldest = Math.min(oldest, this.due(e.unit, f, f.receivedAt));
    }
    return Math.max(0, now - oldest);
  }

  /** Frames and closes `worker` holds now (sent to it, their work not done). */
  heldAt(worker: SchedulerWorker): number {
    return this.inFlight.get(worker) ?? 0;
  }

  /** No more frames go out and no unit is retried (shutdown); answers of units at workers are still delivered. */
  close(): void {
    this.closed = true;
  }

  /** Complete units of `q` with frames, not at a worker: what its queue limit counts. */
  private waitingUnits(q: Queue): number {
    let n = 0;
    for (const e of q.entries) if (!e.at && !e.failure && e.unit.complete && e.unit.frames.length > 0) n++;
    return n;
  }

  /** Bytes of the frames of `q` that will still go to a worker. Counted, not collected: it runs for every frame. */
  private waitingBytes(q: Queue): number {
    let bytes = 0;
    for (const e of q.entries) {
      if (e.failure) continue;
      const frames = e.unit.frames;
      for (let i = e.at?.sent ?? 0; i < frames.length; i++) bytes += frames[i].image.length;
    }
    return bytes;
  }

  private forgetIfDone(q: Queue): void {
    if (q.entries.length === 0 && this.queues.get(q.owner) === q) {
      this.queues.delete(q.owner);
      this.idleTags.set(q.owner, q.lastTag);
    }
  }

  /** Shed the frames of `e` from index `from` on; they never reached a worker. */
  private shed(q: Queue, e: Entry, from: number, count = e.unit.frames.length - from): void {
    const dropped = e.unit.frames.splice(from, count);
    const n = dropped.length;
    if (n === 0) return;
    this.budget.free(q.owner, imagesOf(dropped));
    e.unit.counts.shed += n;
    this.shedTotal += n;
    q.owner.shed(e.unit, n);
    this.reindex(q);
  }

  private shedOldest(q: Queue): boolean {
    const oldest = q.entries.find((e) => !e.at && !e.failure && e.unit.frames.length > 0);
    if (!oldest) return false;
    this.shed(q, oldest, 0);
    return true;
  }

  /**
   * The worker for a unit's first frame: of the ready ones with room, the
   * one holding the fewest frames and closes, then with the fewest units
   * open, whose frames are still to come to it.
   */
  private freeWorker(): SchedulerWorker | null {
    let best: SchedulerWorker | null = null;
    let bestLoad = [Infinity, Infinity];
    for (const w of this.workers.workers()) {
      const load = [this.heldAt(w), this.openUnits.get(w) ?? 0];
      if (this.hasRoom(w) && (load[0] < bestLoad[0] || (load[0] === bestLoad[0] && load[1] < bestLoad[1]))) {
        best = w;
        bestLoad = load;
      }
    }
    return best;
  }

  private hasRoom(w: SchedulerWorker): boolean {
    return w.ready && this.heldAt(w) < lookAhead(Math.max(w.frameMsAvg, w.closeMsAvg));
  }

  /** When a result will wait on frame `f` of `unit`, tagged `tag`. */
  private due(unit: Unit, f: FrameEntry, tag: number): number {
    if (unit.complete) return tag;
    const toLast = Math.max(0, unit.seqFrom + this.limits.batchFrames - 1 - f.seq);
    return tag + toLast * this.limits.framePeriodMs;
  }

  private tag(q: Queue, f: FrameEntry): number {
    return Math.max(f.receivedAt, q.lastTag + this.limits.framePeriodMs);
  }

  /**
   * Settle what a queue's first unit allows without a worker's turn: stale
   * frames shed, a unit that needs no worker answered, a failed one
   * answered once complete, a complete one closed at its worker.
   */
  private advance(q: Queue, now = this.now()): void {
    for (let e = q.entries[0]; e; e = q.entries[0]) {
      const sent = e.at?.sent ?? 0;
      let stale = 0;
      while (sent + stale < e.unit.frames.length && now - e.unit.frames[sent + stale].receivedAt > this.limits.maxUnitAgeMs) stale++;
      if (stale > 0) this.shed(q, e, sent, stale);
      if (!e.unit.complete) return;
      if (e.failure) {
        this.finish(q, e, { kind: 'failed', error: e.failure.error });
      } else if (e.at) {
        // A session that went away is no longer scheduled: its unit is closed at once.
        if (q.closed && e.at.closeSentAt === null && e.at.sent === e.unit.frames.length) this.sendClose(q, e, e.at);
        return;
      } else if (e.unit.frames.length === 0 && !e.unit.closesWindow) {
        this.finish(q, e, { kind: 'skipped' });
      } else return;
    }
  }

  private pump(): void {
    // Answers settled synchronously inside a dispatch come back here: the loop below picks them up.
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.dispatchOne());
    } finally {
      this.pumping = false;
    }
  }

  /** The item `q` would send next, wherever it goes; null when it has none now. */
  private nextItem(q: Queue): NextItem | null {
    const e = q.entries[0];
    if (!e || e.failure) return null;
    const { unit } = e;
    let f: FrameEntry | null = null;
    if (e.at) {
      if (e.at.sent < unit.frames.length) f = unit.frames[e.at.sent];
      else if (!unit.complete || e.at.closeSentAt !== null) return null;
    } else if (unit.frames.length > 0) f = unit.frames[0];
    else if (!unit.complete) return null;
    // A close is due as soon as the unit is cut and its frames are sent: at its last frame's tag; an empty
    // unit at its cut. Both go before the frames due in the same period.
    const tag = f ? this.tag(q, f) : e.at ? q.lastTag : unit.createdAt;
    const slot = Math.floor((f ? this.due(unit, f, tag) : tag) / this.limits.framePeriodMs);
    return { e, f, tag, worker: e.at?.worker ?? null, slot, rank: f ? q.lastTag : -Infinity };
  }

  /** Put `q` in the lane of its next item, at that item's place (out of every lane when it has none), and by the age of its first waiting frame. */
  private reindex(q: Queue): void {
    const live = !q.closed && this.queues.get(q.owner) === q;
    const head = q.entries[0];
    q.oldestAt = live ? (head?.unit.frames[head.at?.sent ?? 0]?.receivedAt ?? Infinity) : Infinity;
    if (q.oldestAt < Infinity) this.byAge.set(q);
    else this.byAge.delete(q);
    const next = live ? this.nextItem(q) : null;
    let lane: Lane | null = null;
    if (next) {
      lane = this.lanes.get(next.worker) ?? null;
      if (!lane) this.lanes.set(next.worker, (lane = { worker: next.worker, queues: new IndexedHeap(ahead) }));
    }
    const was = q.lane;
    if (was && was !== lane) {
      was.queues.delete(q);
      // A worker that is gone takes no more items; its lane empties as its units fail, and goes with them.
      if (was.queues.size === 0 && was.worker && !was.worker.ready) this.lanes.delete(was.worker);
    }
    q.lane = lane;
    if (lane && next) {
      q.slot = next.slot;
      q.rank = next.rank;
      lane.queues.set(q);
    }
  }

  /**
   * Send the frame (or open the empty unit) due first; false when nothing can go now. It runs for every frame
   * that arrives and every one a worker finishes: it looks at the head of each lane with room, not at every
   * session, and returns at once when no worker has room.
   */
  private dispatchOne(): boolean {
    const free = this.freeWorker();
    if (!free) return false;
    const now = this.now();
    // Frames that waited too long are shed first, wherever they are: their units may then close sooner.
    const staleBefore = now - this.limits.maxUnitAgeMs;
    for (let q = this.byAge.peek(); q && q.oldestAt < staleBefore; q = this.byAge.peek()) {
      const was = q.oldestAt;
      this.advance(q, now);
      this.reindex(q);
      if (q.oldestAt === was && this.byAge.peek() === q) break; // nothing was stale after all: never spin
    }
    // Every queue is in the lane of its next item, at that item's place, and no stale frame is left, and a
    // unit that needs no worker is answered as soon as it is first: the head of a lane is what goes.
    let best: Queue | null = null;
    for (const lane of this.lanes.values()) {
      if (lane.worker !== null && !this.hasRoom(lane.worker)) continue;
      const q = lane.queues.peek();
      if (q && (!best || ahead(q, best))) best = q;
    }
    if (!best) return false;
    const next = this.nextItem(best)!;
    const { e } = next;
    if (!e.at) this.openAt(best, e, free);
    const at = e.at!;
    if (at.sent < e.unit.frames.length) this.sendFrame(best, e, at, next.tag);
    else this.sendClose(best, e, at);
    return true;
  }

  private openAt(q: Queue, e: Entry, worker: SchedulerWorker): void {
    e.attempts++;
    let stream: SchedulerStream;
    try {
      stream = worker.open(q.owner.open(e.unit));
    } catch (err) {
      const failed = Promise.reject(err);
      stream = { frame: () => failed, close: () => failed };
    }
    e.at = { worker, stream, sent: 0, closeSentAt: null, lastSentAt: this.now(), lastWaitMs: 0, tagBefore: q.lastTag };
    this.openUnits.set(worker, (this.openUnits.get(worker) ?? 0) + 1);
    this.reindex(q);
  }

  private sendFrame(q: Queue, e: Entry, at: Attempt, tag: number): void {
    const f = e.unit.frames[at.sent++];
    const now = this.now();
    q.lastTag = tag;
    at.lastSentAt = now;
    at.lastWaitMs = now - f.receivedAt;
    this.reindex(q);
    const done = this.hold(at.worker);
    at.stream
      .frame(frameMeta(f), f.image)
      .then(
        () => {
          done();
          this.pump();
        },
        (err: unknown) => {
          done();
          this.attemptFailed(q, e, at, err);
        },
      )
      .catch((err: unknown) => this.logger?.error({ event: 'error', sessionId: q.owner.id, err }, 'settling a frame failed'));
  }

  /** Count one more frame or close at `worker`; the function returned counts it done. */
  private hold(worker: SchedulerWorker): () => void {
    this.inFlight.set(worker, this.heldAt(worker) + 1);
    return () => {
      const held = this.heldAt(worker) - 1;
      if (held > 0) this.inFlight.set(worker, held);
      else this.inFlight.delete(worker);
    };
  }

  private sendClose(q: Queue, e: Entry, at: Attempt): void {
    const closeSentAt = this.now();
    at.closeSentAt = closeSentAt;
    this.reindex(q);
    const done = this.hold(at.worker);
    at.stream
      .close(e.unit.closesWindow)
      .finally(done)
      .then(
        (result) => {
          if (e.at !== at) return;
          const timing = {
            queueMs: e.unit.frames.length > 0 ? at.lastWaitMs : closeSentAt - e.unit.createdAt,
            ipcMs: this.now() - closeSentAt,
            modelMs: result.modelMs,
          };
          for (const f of result.frames) if (f.analysed) this.analysedTotal++;
          this.finish(q, e, { kind: 'result', result, timing });
        },
        (err: unknown) => this.attemptFailed(q, e, at, err),
      )
      .catch((err: unknown) => this.logger?.error({ event: 'error', sessionId: q.owner.id, err }, 'settling a unit failed'));
  }

  /** An attempt failed (a frame or the close); the first failure of an attempt decides. */
  private attemptFailed(q: Queue, e: Entry, at: Attempt, error: unknown): void {
    if (e.at !== at) return;
    this.ended(at);
    e.at = null;
    if (retriable(error) && e.attempts < ATTEMPTS_AFTER_CRASH && !this.closed && !q.closed) q.lastTag = at.tagBefore;
    else e.failure = { error };
    this.reindex(q);
    this.advance(q);
    this.pump();
  }

  /** An attempt is over: its unit is no longer open at its worker. */
  private ended(at: Attempt): void {
    const open = (this.openUnits.get(at.worker) ?? 1) - 1;
    if (open > 0) this.openUnits.set(at.worker, open);
    else this.openUnits.delete(at.worker);
  }

  /** `e`, the first of its queue, is answered: it leaves the queue and its frames are freed. */
  private finish(q: Queue, e: Entry, answer: UnitAnswer): void {
    q.entries.shift();
    if (e.at) this.ended(e.at);
    e.at = null;
    this.reindex(q);
    // Whatever throws on the way to the session is a server bug: it costs this unit, never the process.
    try {
      q.owner.answered(e.unit, answer);
    } catch (err) {
      this.logger?.error({ event: 'error', sessionId: q.owner.id, seqFrom: e.unit.seqFrom, err }, "a unit's result could not be delivered");
    }
    // The worker has read these frames (or the unit is given up): nothing refers to them now.
    this.budget.free(q.owner, imagesOf(e.unit.frames));
    this.forgetIfDone(q);
    // The next unit may need no worker (all its frames shed, or failed for good): it is answered now, not
    // once it is the item due first, which would hold the session's later units behind the others' frames.
    if (q.entries.length > 0) this.advance(q);
    this.pump();
  }
}
