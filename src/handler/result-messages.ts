/**
 * A unit and the model's outcome to the result messages a client gets
 * (docs/protocol.md, "Results"); pure. The messages themselves are built by
 * the protocol module's builders: this file only says which of a unit's
 * seqs and counts each result covers. The session pipeline numbers them and
 * keeps the figures.
 */
import type { OutcomeBody, ResultBody } from '../ipc/messages.js';
import { batchResult, windowResult, type BatchResultMessage, type WindowResultMessage } from '../protocol/server-messages.js';
import type { Unit } from './unit-builder.js';

/** The outcome of a unit no model saw: shed, or the model's answer missing. A new object each time: messages may be changed on the way out. */
export const noOutcome = (): OutcomeBody => ({ score: null, state: 'unknown', signals: {} });
/** The outcome of a unit whose analysis failed (`model_error`). */
export const modelErrorOutcome = (): OutcomeBody => ({ score: null, state: 'unknown', signals: { error: 'model_error' } });

/** The batch result of `unit`: `frames` are the model's per-frame objects, in the order of the unit's frames. */
export function unitBatchResult(unit: Unit, resultId: number, outcome: OutcomeBody, framesAnalysed: number, frames: ResultBody['frames']): BatchResultMessage {
  return batchResult({
    resultId,
    seqFrom: unit.seqFrom,
    seqTo: unit.seqTo,
    framesAnalysed,
    outcome,
    counts: unit.counts,
    frames,
    seqs: unit.frames.map((f) => f.seq),
  });
}

/** The window result of the window `unit` closes; `framesAnalysed` counts the whole window's frames. */
export function unitWindowResult(unit: Unit, resultId: number, outcome: OutcomeBody, framesAnalysed: number): WindowResultMessage {
  if (!unit.windowCounts) throw new RangeError(`unit ${unit.seqFrom}-${unit.seqTo} does not close a window`);
  return windowResult({
    resultId,
    seqFrom: unit.windowSeqFrom,
    seqTo: unit.windowSeqTo,
    framesAnalysed,
    outcome,
    counts: unit.windowCounts,
  });
}
