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
const MIN_FPS = 1;

export class LoadMonitor {
  private fps: number;
  private last: LoadSample | null = null;
  private calmTicks = 0;
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
    if (overloaded && sessions > 0) {
      this.calmTicks = 0;
      // What the workers did analyse, shared out, with headroom to drain the queue.
      const capacityFps = Math.floor((analysedPerSec / sessions) * 0.8);
      const next = Math.max(MIN_FPS, Math.min(this.fps - 1, capacityFps));
      if (this.fps === MIN_FPS && next === MIN_FPS) this.accepting = false;
      this.fps = next;
    } else {
      this.calmTicks++;
      if (sample.oldestWaitMs < this.latencyTargetMs / 2) this.accepting = true;
      if (this.calmTicks >= CALM_TICKS_TO_RAISE && this.fps < this.maxFps) {
        this.calmTicks = 0;
        this.fps++;
      }
    }
    return this.current;
  }
}
