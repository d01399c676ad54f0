/**
 * A unit and the model's outcome to the result messages a client gets
 * (docs/protocol.md, "Results"); pure. The session pipeline numbers them and
 * keeps the figures.
 */
import type { OutcomeBody, ResultBody } from '../ipc/messages.js';
import type { OutboundMessage } from '../protocol/messages.js';
import type { Unit } from './unit-builder.js';

/** The outcome of a unit no model saw: shed, or the model's answer missing. A new object each time: messages may be changed on the way out. */
export const noOutcome = (): OutcomeBody => ({ score: null, state: 'unknown', signals: {} });
/** The outcome of a unit whose analysis failed (`model_error`). */
export const modelErrorOutcome = (): OutcomeBody => ({ score: null, state: 'unknown', signals: { error: 'model_error' } });

/** The batch result of `unit`: `frames` are the model's per-frame objects, each given its seq. */
export function batchResult(unit: Unit, resultId: number, outcome: OutcomeBody, analysed: number, frames: ResultBody['frames']): OutboundMessage {
  return {
    type: 'result',
    kind: 'batch',
    resultId,
    seqFrom: unit.seqFrom,
    seqTo: unit.seqTo,
    framesAnalyzed: analysed,
    score: outcome.score,
    state: outcome.state,
    signals: outcome.signals,
    counts: unit.counts,
    frames: frames.map((f, i) => ({ ...f, seq: unit.frames[i]?.seq })),
  };
}

/** The window result of the window `unit` closes; `analysed` counts the whole window's frames. */
export function windowResult(unit: Unit, resultId: number, outcome: OutcomeBody, analysed: number): OutboundMessage {
  return {
    type: 'result',
    kind: 'window',
    resultId,
    seqFrom: unit.windowSeqFrom,
    seqTo: unit.windowSeqTo,
    framesAnalyzed: analysed,
    score: outcome.score,
    state: outcome.state,
    signals: outcome.signals,
    counts: unit.windowCounts,
  };
}
