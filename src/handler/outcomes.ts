import { MODEL_STATES, type ModelState } from '../ipc/messages.js';
import type { ErrorCode } from './errors.js';

/** Why a received frame was not analysed although it passed the checks. */
export const DROP_REASONS = ['duplicate', 'late', 'rate_limited', 'shed', 'model_error', 'session_closed'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Every frame a session received ends in exactly one of these. */
export interface FrameOutcomes {
  received: number;
  analysed: number;
  /** Frames refused with an error code (sent to the client). */
  rejected: Partial<Record<ErrorCode, number>>;
  /** Frames received but not analysed, by reason. */
  dropped: Partial<Record<DropReason, number>>;
  /** Seqs never received (not an outcome of a received frame). */
  lost: number;
  /** Times the seq was re-synced. */
  resyncs: number;
}

/** The model's verdict on a batch or a window: the states a model may report (the worker protocol's list). */
export const STATES = MODEL_STATES;
export type State = ModelState;
