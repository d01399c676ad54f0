/**
 * Watches whether the workers keep up and steers clients. Once a second it
 * compares frames admitted with frames analysed; while frames are being
 * shed or the oldest queued unit waits longer than the latency target, it
 * asks every client to send fewer frames (a `throttle` message with a
 * suggested fps, from the measured capacity), and lifts the request step
 * by step once the queue stays short. Only when even the lowest fps cannot
 * keep latency bounded does it refuse new sessions.
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

const CALM_TICKS_TO_RAISE = 3;
/** Ticks an fps change is given to take effect (clients react, the backlog drains) before the next cut. */
const SETTLE_TICKS = 2;
const MIN_FPS = 1;

export class LoadMonitor {
  private fps: number;
  private last: LoadSample | null = null;
  private calmTicks = 0;
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
      this.calmTicks = 0;
      this.overloadedTicks++;
      // What the workers did analyse, shared out, with headroom to drain the queue.
      const capacityFps = Math.max(MIN_FPS, Math.floor((analysedPerSec / sessions) * 0.8));
      if (capacityFps < this.fps) {
        this.setFps(capacityFps);
      } else if (this.sinceChange >= SETTLE_TICKS && this.fps > MIN_FPS) {
        // The workers keep up with what arrives but the queue does not shrink: step down.
        this.setFps(this.fps - 1);
      } else if (this.fps === MIN_FPS && this.overloadedTicks > SETTLE_TICKS) {
        this.accepting = false;
      }
    } else {
      this.overloadedTicks = 0;
      this.calmTicks++;
      if (sample.oldestWaitMs < this.latencyTargetMs / 2) this.accepting = true;
      if (this.calmTicks >= CALM_TICKS_TO_RAISE && this.fps < this.maxFps) {
        this.calmTicks = 0;
        this.setFps(this.fps + 1);
      }
    }
    return this.current;
  }

  private setFps(fps: number): void {
    this.fps = fps;
    this.sinceChange = 0;
  }
}
