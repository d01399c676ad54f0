/**
 * Watches whether the workers keep up and steers clients. Once a second it
 * compares frames admitted with frames analysed; while frames are being
 * shed or the oldest queued unit waits longer than the latency target, it
 * asks every client to send fewer frames (a `throttle` message with a
 * suggested fps, in tenths, from the measured capacity), holds while the
 * queue is between a quarter of the target and the target, and lifts the
 * request step by step while the queue is shorter. Only when even the
 * lowest fps cannot keep latency bounded does it refuse new sessions.
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
/**
 * A cut leaves this share of what the workers analysed, so that the backlog
 * drains while the workers stay busy.
 */
const CUT_SHARE = 0.9;
/** A lift adds this share of the maximum fps (0.5 fps of 5), at most once per SETTLE_TICKS. */
const RAISE_SHARE = 0.1;

/** fps are steered in tenths: across many sessions, whole fps would be steps of 20 %. */
const tenths = (fps: number): number => Math.floor(fps * 10 + 1e-9) / 10;

export class LoadMonitor {
  private fps: number;
  private last: LoadSample | null = null;
  private overloadedTicks = 0;
  private sinceChange = SETTLE_TICKS;
  private accepting = true;

  constructor(
    private readonly maxFps: number,
    private readonly latencyTargetMs: number,
  ) {
    this.fps = maxFps;
  }

  get current(): LoadDecision {
    return { fps: this.fps, accepting: this.accepting, overloaded: this.fps < this.maxFps };
  }

  /** Feed one sample (taken every `intervalMs`); returns the new decision. */
  tick(sample: LoadSample, sessions: number, intervalMs: number): LoadDecision {
    const last = this.last ?? sample;
    this.last = sample;
    const shed = sample.shedTotal - last.shedTotal;
    const analysedPerSec = ((sample.analysedTotal - last.analysedTotal) * 1000) / intervalMs;
    const overloaded = shed > 0 || sample.oldestWaitMs > this.latencyTargetMs;
    this.sinceChange++;
    if (overloaded && sessions > 0) {
      this.overloadedTicks++;
      // What the workers did analyse, shared out, with headroom to drain the queue.
      const capacityFps = Math.max(MIN_FPS, tenths((analysedPerSec / sessions) * CUT_SHARE));
      if (capacityFps < this.fps) {
        this.setFps(capacityFps);
      } else if (this.sinceChange >= SETTLE_TICKS && this.fps > MIN_FPS) {
        // The workers keep up with what arrives but the queue does not shrink: step down.
        this.setFps(Math.max(MIN_FPS, tenths(this.fps * CUT_SHARE)));
      } else if (this.fps === MIN_FPS && this.overloadedTicks > SETTLE_TICKS) {
        this.accepting = false;
      }
    } else {
      this.overloadedTicks = 0;
      if (sample.oldestWaitMs < this.latencyTargetMs / 2) this.accepting = true;
      // Lift only while the queue is short. A queue between a quarter of the
      // target and the target is what workers used to the full look like:
      // the fps holds there instead of see-sawing between cuts and lifts.
      const settled = this.sinceChange >= SETTLE_TICKS;
      if (settled && sample.oldestWaitMs <= this.latencyTargetMs / 4 && this.fps < this.maxFps) {
        this.setFps(Math.min(this.maxFps, tenths(this.fps + this.maxFps * RAISE_SHARE)));
      }
    }
    return this.current;
  }

  private setFps(fps: number): void {
    this.fps = fps;
    this.sinceChange = 0;
  }
}
