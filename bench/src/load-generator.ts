/**
 * The load generator: N sessions that behave like the browser client
 * (hello, frames at the welcome's fps, obeying `throttle`, bye, summary),
 * except that each one sends on a fixed schedule whether or not results
 * come back. That is an open model per connection: a slow server cannot
 * slow the senders down and so hide its latency, which is measured from
 * the time a frame was *scheduled* to be sent, not from when the generator
 * managed to send it (the generator's own lag is recorded apart).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { encodeFrame, FORMAT_JPEG } from '../../dist/handler/frame-header.js';
import { zeroCounts, type UnitCounts } from '../../dist/handler/unit-builder.js';
import { LatencyHistogram } from './histogram.js';
import { alignedAfter, phaseDrawer } from './phases.js';

export type Msg = Record<string, any>;

export { zeroCounts, type UnitCounts };

/** What one session saw, counted by the client. */
export interface ClientCounts {
  /** Frame messages sent. */
  sent: number;
  /** Camera ticks skipped because the server asked for fewer fps (`throttle`). */
  withheld: number;
  batches: number;
  windows: number;
  /** Sum of `framesAnalyzed` over batch results. */
  analysedInResults: number;
  /** Sum of batch `counts`. */
  counts: UnitCounts;
  /** `error` messages by code. */
  errors: Record<string, number>;
  throttles: number;
  /** `align` messages received; each one that comes while the session sends delays its capture once. */
  aligns: number;
  /** When the first throttle below the welcome's fps came, monotonic ms (null: never). */
  firstThrottleAt: number | null;
  /** Lowest fps a throttle asked for (the welcome's fps when never throttled). */
  minFps: number;
  notices: number;
  /** Batch results whose last seq was scheduled inside the measurement window. */
  windowBatches: number;
  /** Seq slots covered by the batch results received. */
  slotsCovered: number;
}

export interface SessionOutcome {
  index: number;
  counts: ClientCounts;
  summary: Msg | null;
  /** Close code and reason, when the server closed the connection. */
  closed: { code: number; reason: string } | null;
  /** Why the session could not be opened, if it was not. */
  openError: string | null;
}

/** Where every session of a step records what it measures. */
export class StepRecorder {
  /** Result latency of every batch result measured (scheduled send of its last seq → arrival), ms. */
  readonly latency = new LatencyHistogram();
  /** The same, for batch results with at least one analysed frame. */
  readonly analysedLatency = new LatencyHistogram();
  /** End to end minus the unit's model time (when the model reports `benchModelMs`). */
  readonly addedLatency = new LatencyHistogram();
  /** Model time per unit, from `signals.benchModelMs`. */
  readonly modelMs = new LatencyHistogram();
  /** Send of a unit's last frame → its model began (receive, cut, queue, IPC), from `signals.benchModelStart`. */
  readonly toModel = new LatencyHistogram();
  /** Model done → result at the generator (IPC back, result handling, WebSocket, the generator's own loop). */
  readonly fromModel = new LatencyHistogram();
  /** How late the generator sent frames against their schedule (its own lag, not the server's). */
  readonly sendLag = new LatencyHistogram();
  /** Measurement window, monotonic ms (performance.now()); +Infinity until known. */
  windowFrom = Infinity;
  windowTo = Infinity;
  /** Frames analysed and slots covered by the batch results measured. */
  windowAnalysed = 0;
  windowSlots = 0;
  windowShed = 0;
  windowSent = 0;
  windowWithheld = 0;

  inWindow(scheduledAt: number): boolean {
    return scheduledAt >= this.windowFrom && scheduledAt < this.windowTo;
  }
}

export interface SessionOptions {
  url: string;
  /** Frame messages, one per capture, shared by every session: seq and captureTs are written in before each send. */
  messages: Buffer[];
  recorder: StepRecorder;
  /** Obey `throttle` like the browser client does (default) or keep sending at the welcome's fps. */
  obeyThrottle: boolean;
  /** Time allowed for the welcome, and for the summary after bye. */
  handshakeTimeoutMs: number;
  /** Where in each unit period (ms after a period's start, counted from the run's start) this session's units begin [0]. */
  phaseMs?: number;
}

/**
 * Which camera ticks a throttled client sends: `share` of them (fps asked ÷
 * the welcome's fps), spread evenly. The credit left after a send carries
 * over, so a share of 0.68 sends 68 ticks in 100, not every other one.
 */
export class TickGate {
  private credit = 1;

  pass(share: number): boolean {
    const send = this.credit >= 1 - 1e-9;
    if (send) this.credit -= 1;
    this.credit += share;
    return send;
  }
}

/** Scheduled send times are remembered for this many seqs (a power of two). */
const SCHEDULE_SLOTS = 4096;

/**
 * One simulated student. Frames are masked with a random key as a browser
 * masks them: with an all-zero key ws would skip the XOR on both sides, and
 * the server would do less than it does for real clients.
 */
export class BenchSession {
  readonly counts: ClientCounts = {
    sent: 0,
    withheld: 0,
    batches: 0,
    windows: 0,
    analysedInResults: 0,
    counts: zeroCounts(),
    errors: {},
    throttles: 0,
    aligns: 0,
    firstThrottleAt: null,
    minFps: 0,
    notices: 0,
    windowBatches: 0,
    slotsCovered: 0,
  };
  summary: Msg | null = null;
  closed: { code: number; reason: string } | null = null;
  openError: string | null = null;
  private ws: WebSocket | null = null;
  private readonly scheduledAt = new Float64Array(SCHEDULE_SLOTS);
  private readonly sentAt = new Float64Array(SCHEDULE_SLOTS);
  private seq = 0;
  private baseFps = 5;
  private batchFrames = 5;
  private fps = 5;
  private readonly gate = new TickGate();
  private next = 0;
  private stopAt = Infinity;
  private timer: NodeJS.Timeout | null = null;
  private waiters: Array<() => void> = [];

  constructor(
    readonly index: number,
    private readonly opts: SessionOptions,
  ) {}

  /** Connect and say hello; resolves once welcomed (or with openError set). */
  async open(): Promise<void> {
    const ws = new WebSocket(this.opts.url, { perMessageDeflate: false, skipUTF8Validation: true });
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (!isBinary) this.onMessage(JSON.parse(data.toString()), performance.now());
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.stop();
      this.wake();
    });
    ws.on('error', (err) => {
      if (!this.welcomed) this.openError ??= err.message;
      this.wake();
    });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', client: { library: 'jipjung-bench', version: '1' } })));
    await this.until(() => this.welcomed || this.closed !== null || this.openError !== null, this.opts.handshakeTimeoutMs);
    if (!this.welcomed) {
      this.openError ??= this.closed ? `closed ${this.closed.code} ${this.closed.reason}` : 'no welcome in time';
      ws.terminate();
    }
  }

  private welcomed = false;

  /** A unit's length in time at the welcome's fps, ms. */
  get unitPeriodMs(): number {
    return (this.batchFrames * 1000) / this.baseFps;
  }

  /** When to send the first frame so that units begin at this session's phase of the unit period counted from `anchor`. */
  firstSendAfter(now: number, anchor: number): number {
    const period = this.unitPeriodMs;
    return alignedAfter(now, anchor, (this.opts.phaseMs ?? 0) % period, period);
  }

  /** Send frames every 1000/fps ms from `firstAt` (monotonic ms) until `stopAt`. */
  startSending(firstAt: number, stopAt: number): void {
    if (!this.welcomed) return;
    this.next = firstAt;
    this.stopAt = stopAt;
    this.arm();
  }

  /**
   * Stop sending, say bye, wait for the summary (or the close). With
   * `drain`, bye waits until every whole unit sent is answered, as a
   * student who ends a session at a unit's boundary sees it.
   */
  async finish(drain = false): Promise<void> {
    this.stop();
    const ws = this.ws;
    if (!ws || !this.welcomed || this.closed) return;
    if (drain) {
      // Only whole units are answered before bye (throttled ticks can leave the last one open).
      const whole = this.seq - (this.seq % this.batchFrames);
      await this.until(() => this.counts.slotsCovered >= whole || this.closed !== null, this.opts.handshakeTimeoutMs);
    }
    if (this.closed) return;
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'bye' }));
    await this.until(() => this.summary !== null || this.closed !== null, this.opts.handshakeTimeoutMs);
    // The server closes with 1000 right after the summary.
    await this.until(() => this.closed !== null, 2000);
    if (!this.closed) ws.terminate();
  }

  outcome(): SessionOutcome {
    return { index: this.index, counts: this.counts, summary: this.summary, closed: this.closed, openError: this.openError };
  }

  private stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopAt = -Infinity;
  }

  private arm(): void {
    if (this.next >= this.stopAt) return;
    this.timer = setTimeout(() => this.tick(), Math.max(0, this.next - performance.now()));
  }

  private tick(): void {
    this.timer = null;
    const now = performance.now();
    // Behind schedule (a busy generator): every frame that is due goes now, as a camera's would have been captured.
    while (this.next <= now && this.next < this.stopAt) {
      this.fire(this.next, now);
      this.next += 1000 / this.baseFps;
    }
    this.arm();
  }

  private fire(scheduled: number, now: number): void {
    const rec = this.opts.recorder;
    const measured = rec.inWindow(scheduled);
    // A camera ticking at the welcome's fps; a throttled client sends only fps/base of the ticks.
    if (this.opts.obeyThrottle && this.fps < this.baseFps && !this.gate.pass(this.fps / this.baseFps)) {
      this.counts.withheld++;
      if (measured) rec.windowWithheld++;
      return;
    }
    const ws = this.ws!;
    if (ws.readyState !== WebSocket.OPEN) return;
    const seq = this.seq++;
    this.scheduledAt[seq & (SCHEDULE_SLOTS - 1)] = scheduled;
    this.sentAt[seq & (SCHEDULE_SLOTS - 1)] = now;
    const message = this.opts.messages[(seq + this.index) % this.opts.messages.length];
    message.writeUInt32BE(seq >>> 0, 4);
    message.writeDoubleBE(performance.timeOrigin + scheduled, 8);
    // ws masks a copy of a caller's Buffer within send() (nothing is compressed), so the message can be reused.
    ws.send(message);
    this.counts.sent++;
    if (measured) {
      rec.windowSent++;
      rec.sendLag.record(now - scheduled);
    }
  }

  private onMessage(msg: Msg, now: number): void {
    const c = this.counts;
    switch (msg.type) {
      case 'welcome':
        this.baseFps = this.fps = msg.fps;
        this.batchFrames = msg.batchFrames;
        c.minFps = msg.fps;
        this.welcomed = true;
        break;
      case 'result':
        if (msg.kind === 'batch') this.onBatch(msg, now);
        else c.windows++;
        break;
      case 'error':
        c.errors[msg.code] = (c.errors[msg.code] ?? 0) + 1;
        break;
      case 'throttle':
        c.throttles++;
        if (msg.fps < this.baseFps) c.firstThrottleAt ??= now;
        this.fps = msg.fps;
        c.minFps = Math.min(c.minFps, msg.fps);
        break;
      case 'align':
        // As the browser client does: the next capture, and every one after it, comes delayMs later.
        c.aligns++;
        if (this.timer && Number.isFinite(msg.delayMs) && msg.delayMs > 0 && msg.delayMs < this.unitPeriodMs) {
          clearTimeout(this.timer);
          this.next += msg.delayMs;
          this.arm();
        }
        break;
      case 'notice':
        c.notices++;
        break;
      case 'summary':
        this.summary = msg;
        break;
    }
    this.wake();
  }

  private onBatch(msg: Msg, now: number): void {
    const c = this.counts;
    c.batches++;
    c.analysedInResults += msg.framesAnalyzed;
    c.slotsCovered += msg.seqTo - msg.seqFrom + 1;
    for (const k of Object.keys(c.counts) as Array<keyof UnitCounts>) c.counts[k] += msg.counts?.[k] ?? 0;
    const seqTo: number = msg.seqTo;
    if (seqTo >= this.seq || seqTo < this.seq - SCHEDULE_SLOTS) return;
    const scheduled = this.scheduledAt[seqTo & (SCHEDULE_SLOTS - 1)];
    const rec = this.opts.recorder;
    if (!rec.inWindow(scheduled)) return;
    c.windowBatches++;
    const latency = now - scheduled;
    rec.latency.record(latency);
    rec.windowSlots += msg.seqTo - msg.seqFrom + 1;
    rec.windowAnalysed += msg.framesAnalyzed;
    rec.windowShed += msg.counts?.shed ?? 0;
    if (msg.framesAnalyzed > 0) {
      rec.analysedLatency.record(latency);
      const modelMs = msg.signals?.benchModelMs;
      if (typeof modelMs === 'number') {
        rec.modelMs.record(modelMs);
        rec.addedLatency.record(latency - modelMs);
        const start = msg.signals?.benchModelStart;
        if (typeof start === 'number') {
          // Wall clock of the worker → this process's monotonic clock.
          const began = start - performance.timeOrigin;
          rec.toModel.record(Math.max(0, began - this.sentAt[seqTo & (SCHEDULE_SLOTS - 1)]));
          rec.fromModel.record(Math.max(0, now - began - modelMs));
        }
      }
    }
  }

  private async until(cond: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!cond() && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(250, Math.max(1, deadline - performance.now())));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    for (const w of this.waiters.splice(0)) w();
  }
}

export interface LoadOptions {
  url: string;
  sessions: number;
  images: Buffer[];
  rampMs: number;
  /** Time between the last session opening and the start of measurement. */
  settleMs: number;
  durationMs: number;
  obeyThrottle: boolean;
  handshakeTimeoutMs: number;
  /**
   * Session lifetime, ms (0: every session lasts the whole step). A session
   * that reaches it sends its last unit, waits for its results, says bye,
   * and a new session opens in its place at once, so N stay connected.
   */
  lifetimeMs?: number;
  /** Seed of the sessions' phases (see runLoad) [1]. */
  seed?: number;
  /** Phases are drawn within this many seconds from the start of the unit period [1: all of it]. */
  phaseSpreadS?: number;
  /** Called when the measurement window opens and closes (for CPU and memory samples). */
  onWindow?: (phase: 'start' | 'end') => void | Promise<void>;
}

export interface LoadResult {
  recorder: StepRecorder;
  sessions: SessionOutcome[];
  /** Measurement window length actually observed, ms. */
  windowMs: number;
}

/** One frame message per capture, for BenchSession's `messages`. */
export const frameMessages = (images: Buffer[]) => images.map((image) => encodeFrame({ format: FORMAT_JPEG, seq: 0, captureTs: 0 }, image));

/** Sending time after the window: more than one batch (5 frames at 5 fps). */
const TAIL_MS = 1500;

const sleepUntil = (t: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, t - performance.now())));

/**
 * Open `sessions` sessions spread evenly over the ramp, measure for
 * `durationMs` after the ramp and a settling time, then bye every session
 * and collect the summaries. With `lifetimeMs`, sessions come and go
 * throughout, N at a time.
 *
 * Students start at times of their own, so each session's units begin at a
 * phase of the unit period drawn at random (uniform, from `seed`, within the
 * first `phaseSpreadS` seconds of the period: all of it by default, less for
 * a class that starts together) and counted from the run's start, whatever
 * its ramp slot and handshake took.
 * Phases that follow from the ramp slot fall into clusters for some N
 * (sessions about N/5 slots apart begin their units within a few ms of
 * each other), and the units of a cluster queue for the workers together.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const recorder = new StepRecorder();
  const start = performance.now();
  const windowFrom = start + o.rampMs + o.settleMs;
  const windowTo = windowFrom + o.durationMs;
  // Sending goes on for a batch past the window, so the window's last units complete as in steady state
  // (a batch left open at bye would be answered only then, and its latency would be the generator's).
  const sendUntil = windowTo + TAIL_MS;
  recorder.windowFrom = windowFrom;
  recorder.windowTo = windowTo;
  const sessions: BenchSession[] = [];
  const slots: Promise<void>[] = [];
  const ended: Promise<void>[] = [];
  const messages = frameMessages(o.images);
  const lifetimeMs = o.lifetimeMs ?? 0;
  let nextIndex = o.sessions;
  const drawPhase = phaseDrawer(o.seed ?? 1, o.phaseSpreadS);
  const newSession = (index: number) => {
    const s = new BenchSession(index, {
      url: o.url,
      messages,
      recorder,
      obeyThrottle: o.obeyThrottle,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      phaseMs: drawPhase(),
    });
    sessions.push(s);
    return s;
  };
  // One slot per concurrent session; with a lifetime, each slot opens one session after another.
  const runSlot = async (i: number, first: BenchSession) => {
    let s = first;
    // The first sessions end at staggered times, so that sessions are replaced evenly rather than all at once.
    let life = (lifetimeMs * (i + 1)) / o.sessions;
    for (;;) {
      await s.open();
      if (s.openError !== null) return;
      const firstAt = s.firstSendAfter(performance.now(), start);
      // Whole units (a unit is 1 s of frames at 5 fps), ending half a frame interval after the last one.
      const stopAt = lifetimeMs > 0 ? firstAt + Math.max(2, Math.round(life / 1000)) * 1000 - 100 : Infinity;
      s.startSending(firstAt, Math.min(stopAt, sendUntil));
      if (stopAt >= sendUntil) return;
      await sleepUntil(stopAt);
      ended.push(s.finish(true));
      // No replacement that could not send a whole unit before sending ends (past the window by then).
      if (performance.now() + 1000 > sendUntil) return;
      s = newSession(nextIndex++);
      life = lifetimeMs;
    }
  };
  for (let i = 0; i < o.sessions; i++) {
    await sleepUntil(start + (o.rampMs * i) / o.sessions);
    slots.push(runSlot(i, newSession(i)));
  }
  await sleepUntil(windowFrom);
  await o.onWindow?.('start');
  await sleepUntil(windowTo);
  await o.onWindow?.('end');
  await sleepUntil(sendUntil);
  await Promise.all(slots);
  await Promise.all(ended);
  await Promise.all(sessions.map((s) => s.finish()));
  return { recorder, sessions: sessions.map((s) => s.outcome()), windowMs: windowTo - windowFrom };
}
