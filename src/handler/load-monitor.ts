/**
 * Watches whether the workers keep up and steers clients. Once a second it
 * compares frames admitted with frames analysed; while frames are being
 * shed or the oldest queued unit waits longer than the latency target, it
 * asks every client to send fewer frames (a `throttle` message with a
 * suggested fps, in tenths): the capacity it measured (what the workers
 * analyse while a queue keeps them busy), less enough to drain the backlog.
 * It holds while the queue is between a quarter of the target and the
 * target, unless the queue keeps growing past half the target: then clients
 * send more than the capacity, and it steps back to the capacity before the
 * backlog needs a deep cut. While the queue is shorter it lifts the fps back
 * to 90 % of the capacity, then step by step, never more than 10 % above it
 * at a time. Only when even the lowest fps cannot keep latency bounded does
 * it refuse new sessions.
 */

export interface LoadSample {
  /** Frames shed since start. */
  shedTotal: number;
  /** Frames analysed since start. */
  analysedTotal: number;
  /** ms the oldest queued unit has waited. */
  oldestWaitMs: number;
}

export interface LoadDecision {
  /** fps every client should send at now. */
  fps: number;
  /** Whether new sessions are accepted. */
  accepting: boolean;
  overloaded: boolean;
}

/** Ticks an fps change is given to take effect (clients react, the backlog drains) before the next cut. */
const SETTLE_TICKS = 2;
const MIN_FPS = 1;
/** A backlog is to be drained within about this long (ms) after a cut. */
const DRAIN_MS = 4000;
/** Back from a throttle, clients are first lifted to this share of the capacity last measured. */
const RESUME_SHARE = 0.9;
/**
 * Beyond that, a lift adds this share of the maximum fps (0.5 fps of 5), at most once per SETTLE_TICKS, but
 * goes no further than PROBE_ABOVE times the capacity (at least 0.1 fps further).
 */
const PROBE_SHARE = 0.1;
const PROBE_ABOVE = 1.1;
/** A cut that does not drain the queue is followed by one of this share. */
const STEP_DOWN_SHARE = 0.9;
/**
 * The capacity estimate is the most analysed in an overloaded second,
 * shrinking by this share per overloaded second: one slow second (a
 * connection storm, another process) must not set the fps for everyone.
 */
const CAPACITY_DECAY = 0.9;

/** fps are steered in tenths: across many sessions, whole fps would be steps of 20 %. */
const tenths = (fps: number): number => Math.floor(fps * 10 + 1e-9) / 10;

export class LoadMonitor {
  private fps: number;
  private last: LoadSample | null = null;
  private overloadedTicks = 0;
  private sinceChange = SETTLE_TICKS;
  private accepting = true;
  /** Frames/s the workers analyse when they cannot keep up (0: not measured); see CAPACITY_DECAY. */
  private capacity = 0;

  constructor(
    private readonly maxFps: number,
    private readonly latencyTargetMs: number,
  ) {
    this.fps = maxFps;
  }

  get current(): LoadDecision {
    return { fps: this.fps, accepting: this.accepting, overloaded: this.fps < this.maxFps };
  }

  /** Feed one sample (taken every `intervalMs`) and the number of sessions that share the capacity; returns the new decision. */
  tick(sample: LoadSample, sessions: number, intervalMs: number): LoadDecision {
    const last = this.last;
    this.last = sample;
    // The first sample has nothing to compare with: what the workers analyse is not known yet, and a
    // backlog already there (sessions that arrived in the first second) must not be read as no capacity.
    if (last === null) return this.current;
    const shed = sample.shedTotal - last.shedTotal;
    const analysedPerSec = ((sample.analysedTotal - last.analysedTotal) * 1000) / intervalMs;
    const wait = sample.oldestWaitMs;
    const short = this.latencyTargetMs / 4;
    const overloaded = shed > 0 || wait > this.latencyTargetMs;
    // A queue at both ends of the interval kept the workers busy all along: what they analysed is the capacity.
    // Otherwise they analysed all that came, and the capacity is at least that.
    const backlogged = overloaded || (wait > short && last.oldestWaitMs > short);
    this.capacity = backlogged ? Math.max(analysedPerSec, this.capacity * CAPACITY_DECAY) : Math.max(analysedPerSec, this.capacity);
    const share = sessions > 0 ? this.capacity / sessions : Infinity;
    this.sinceChange++;
    const settled = this.sinceChange >= SETTLE_TICKS;
    if (overloaded && sessions > 0) {
      this.overloadedTicks++;
      // Send less than the capacity by enough to drain the backlog (about `wait` worth of frames) within DRAIN_MS.
      const drainShare = Math.max(0.5, 1 - wait / DRAIN_MS);
      const target = Math.max(MIN_FPS, tenths(share * drainShare));
      if (target < this.fps) {
        this.setFps(target);
      } else if (settled && wait >= last.oldestWaitMs && this.fps > MIN_FPS) {
        // The workers keep up with what arrives, yet the queue does not shrink: step down.
        this.setFps(Math.max(MIN_FPS, tenths(this.fps * STEP_DOWN_SHARE)));
      } else if (this.fps === MIN_FPS && this.overloadedTicks > SETTLE_TICKS) {
        this.accepting = false;
      }
    } else {
      this.overloadedTicks = 0;
      if (wait < this.latencyTargetMs / 2) this.accepting = true;
      if (settled && backlogged && wait > this.latencyTargetMs / 2 && wait > last.oldestWaitMs && this.fps > share && this.fps > MIN_FPS) {
        // The queue grows, short of overload yet: clients send more than the workers analyse. Back to that,
        // before the backlog is long enough to need a deep cut to drain.
        this.setFps(Math.max(MIN_FPS, tenths(share)));
      } else if (settled && wait <= short && this.fps < this.maxFps) {
        // Lift only while the queue is short. A queue between a quarter of the target and the target is what
        // workers used to the full look like: short of growing past half the target (above), the fps holds there.
        const resume = sessions > 0 ? tenths(share * RESUME_SHARE) : this.maxFps;
        // Probe above the capacity in small steps, so that a lift past it builds a backlog slowly.
        const probe = Math.min(tenths(this.fps + this.maxFps * PROBE_SHARE), Math.max(tenths(this.fps + 0.1), tenths(share * PROBE_ABOVE)));
        this.setFps(Math.min(this.maxFps, Math.max(resume, probe)));
      }
    }
    return this.current;
  }

  private setFps(fps: number): void {
    this.fps = fps;
    this.sinceChange = 0;
  }
}
