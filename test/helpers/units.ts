/**
 * Units and sessions as the scheduler sees them, for tests of scheduling
 * without the frame path: `unit` builds a unit of real frame entries (their
 * bytes held in a real FrameBudget), `owner` a session that records every
 * call the scheduler makes on it.
 */
import type { OpenMeta } from '../../src/ipc/codec.js';
import type { FrameBudget } from '../../src/handler/frame-budget.js';
import type { UnitAnswer, UnitOwner } from '../../src/handler/scheduler.js';
import { zeroCounts, type Unit } from '../../src/handler/unit-builder.js';

export interface UnitSpec {
  /** First seq; the unit covers `frames` seq slots from it. */
  seqFrom: number;
  frames: number;
  /** Bytes of each frame's image. */
  bytes?: number;
  closesWindow?: boolean;
  /** Monotonic ms it was cut at, and its frames received at. */
  createdAt?: number;
  /** False for a unit still open (its frames still to come); true by default. */
  complete?: boolean;
}

/** A unit whose frames are admitted into `budget` for `holder`, as the frame path does. */
export function unit(budget: FrameBudget, holder: UnitOwner, spec: UnitSpec): Unit {
  const bytes = spec.bytes ?? 1000;
  const frames = Array.from({ length: spec.frames }, (_, i) => ({
    seq: spec.seqFrom + i,
    captureTs: 1.7e12 + (spec.seqFrom + i) * 200,
    format: 1,
    width: 640,
    height: 480,
    image: budget.admit(holder, Buffer.alloc(bytes, spec.seqFrom + i)),
    receivedAt: spec.createdAt ?? 0,
  }));
  const seqTo = spec.seqFrom + Math.max(spec.frames, 1) - 1;
  return {
    frames,
    slots: Math.max(spec.frames, 1),
    seqFrom: spec.seqFrom,
    seqTo,
    counts: zeroCounts(),
    closesWindow: spec.closesWindow ?? false,
    windowSeqFrom: spec.seqFrom,
    windowSeqTo: seqTo,
    windowCounts: spec.closesWindow ? zeroCounts() : null,
    createdAt: spec.createdAt ?? 0,
    after: { base: 0, windowOpen: !spec.closesWindow, windowSeqFrom: 0, windowCounts: zeroCounts() },
    complete: spec.complete ?? true,
  };
}

export interface RecordingOwner extends UnitOwner {
  /** Every answer, in the order the scheduler gave them. */
  answers: Array<{ seqFrom: number; frames: number; answer: UnitAnswer }>;
  /** Frames shed, per unit seqFrom. */
  shedFrames: Map<number, number>;
  /** The units opened at workers, in order (the context each carried). */
  opens: OpenMeta[];
}

/** A session that records what the scheduler does with its units. */
export function owner(id: string): RecordingOwner {
  const o: RecordingOwner = {
    id,
    heldBytes: 0,
    answers: [],
    shedFrames: new Map(),
    opens: [],
    open() {
      const meta: OpenMeta = { session: id, batchFrames: 5, windowFrames: 50, fps: 5, context: { after: o.answers.length } };
      o.opens.push(meta);
      return meta;
    },
    shed(u, n) {
      o.shedFrames.set(u.seqFrom, (o.shedFrames.get(u.seqFrom) ?? 0) + n);
    },
    answered(u, answer) {
      o.answers.push({ seqFrom: u.seqFrom, frames: u.frames.length, answer });
    },
  };
  return o;
}
