import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '../handler/errors.js';
import { UnitBuilder, type Unit } from '../handler/unit-builder.js';

/** Why an accepted-looking frame was not analysed. */
export type DropReason = 'shed' | 'model_error' | 'session_closed';

export interface FrameOutcomes {
  received: number;
  analysed: number;
  /** Frames refused with an error code (sent to the client). */
  rejected: Partial<Record<ErrorCode, number>>;
  /** Frames accepted but not analysed, by reason. */
  dropped: Partial<Record<DropReason, number>>;
}

export const STATES = ['focused', 'distracted', 'drowsy', 'absent', 'unknown'] as const;
export type State = (typeof STATES)[number];

export type OutboundMessage = Record<string, unknown> & { type: string };

/**
 * One student's session: frame outcomes, the unit builder, the units
 * waiting for a worker, the model context carried between units, and the
 * result sequence. The connection it is attached to may change; the
 * session does not know about sockets, only about a `send` function.
 */
export class Session {
  readonly id: string;
  readonly createdAt = Date.now();
  readonly outcomes: FrameOutcomes = { received: 0, analysed: 0, rejected: {}, dropped: {} };
  readonly units: UnitBuilder;
  /** Units cut and waiting for a worker, oldest first. */
  readonly queue: Unit[] = [];
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
  send: (msg: OutboundMessage) => void = () => {};
  disconnect: (code: number, reason: string) => void = () => {};

  constructor(batchFrames: number, windowFrames: number, id: string = randomUUID()) {
    this.id = id;
    this.units = new UnitBuilder(batchFrames, windowFrames);
  }

  reject(code: ErrorCode, n = 1): void {
    this.outcomes.rejected[code] = (this.outcomes.rejected[code] ?? 0) + n;
  }

  drop(reason: DropReason, n = 1): void {
    if (n > 0) this.outcomes.dropped[reason] = (this.outcomes.dropped[reason] ?? 0) + n;
  }

  /** Fold a batch outcome into the summary figures. */
  recordBatch(score: number | null, state: State, framesAnalysed: number, fps: number, frames: number): void {
    if (score !== null && framesAnalysed > 0) {
      this.scoreSum += score * framesAnalysed;
      this.scoreFrames += framesAnalysed;
    }
    this.stateSeconds[state] += frames / fps;
  }

  /** True when nothing is held, queued or at a worker. */
  get idle(): boolean {
    return !this.inFlight && this.queue.length === 0;
  }

  summary(): OutboundMessage {
    const sum = (o: Partial<Record<string, number>>) => Object.values(o).reduce((a: number, b) => a + (b ?? 0), 0);
    return {
      type: 'summary',
      sessionId: this.id,
      durationMs: Date.now() - this.createdAt,
      framesReceived: this.outcomes.received,
      framesAnalyzed: this.outcomes.analysed,
      framesRejected: sum(this.outcomes.rejected),
      framesDropped: sum(this.outcomes.dropped),
      rejected: { ...this.outcomes.rejected },
      dropped: { ...this.outcomes.dropped },
      results: this.nextResultId - 1,
      meanScore: this.scoreFrames > 0 ? Math.round((this.scoreSum / this.scoreFrames) * 10) / 10 : null,
      stateSeconds: Object.fromEntries(Object.entries(this.stateSeconds).map(([k, v]) => [k, Math.round(v * 10) / 10])),
    };
  }
}
