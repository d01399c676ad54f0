/**
 * What the server sends a client (JSON text): one schema per message, one
 * discriminated union over them (`ServerMessage`, on `type`, and results
 * on `kind`), and the builders of the messages that carry figures (results,
 * summary), so that each is put together in one place. docs/protocol.md
 * ("Message reference") lists the same fields; web/jipjung-client.d.ts
 * declares them for the browser, checked against these types by
 * test/protocol-client-types.test.ts.
 *
 * The schemas are strict: a field the server sends and this file does not
 * name fails the tests that check real server output against them. The
 * model's own objects (`signals`, a frame's entry) are open: they are the
 * model's, passed through.
 */
import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../handler/errors.js';
import { DROP_REASONS, STATES, type FrameOutcomes, type State } from '../handler/outcomes.js';
import type { UnitCounts } from '../handler/unit-builder.js';
import type { OutcomeBody } from '../ipc/messages.js';

/** The client protocol's version, in the welcome. */
export const PROTOCOL_VERSION = 1;

const count = z.number().int().min(0);
const seq = z.number().int().min(0);
const score = z.number().min(0).max(100).nullable();
const state = z.enum(STATES);
const jsonObject = z.record(z.string(), z.unknown());
const errorCode = z.enum(Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]]);

export const welcomeSchema = z.strictObject({
  type: z.literal('welcome'),
  protocol: z.literal(PROTOCOL_VERSION),
  sessionId: z.string(),
  resumeToken: z.string(),
  resumed: z.boolean(),
  nextResultId: z.number().int().min(1),
  fps: z.number().positive(),
  batchFrames: z.number().int().positive(),
  windowFrames: z.number().int().positive(),
  maxFrameBytes: z.number().int().positive(),
  model: z.strictObject({ name: z.string(), version: z.string() }).nullable(),
  auth: z.enum(['secret', 'jwks', 'demo']),
});

/** What became of a unit's seq slots (docs/protocol.md, "Results"). */
export const countsSchema = z.strictObject({
  lost: count,
  rejected: count,
  duplicate: count,
  late: count,
  rateLimited: count,
  shed: count,
});

/** A frame's entry in a batch result: the model's object, `analysed` always, `seq` set by the server. */
export const frameEntrySchema = z.looseObject({ analysed: z.boolean(), seq });

const resultFields = {
  type: z.literal('result'),
  resultId: z.number().int().min(1),
  seqFrom: seq,
  seqTo: seq,
  /** Spelled so on the wire (protocol v1); `analysed` everywhere else. */
  framesAnalyzed: count,
  score,
  state,
  signals: jsonObject,
  counts: countsSchema,
};

export const batchResultSchema = z.strictObject({
  ...resultFields,
  kind: z.literal('batch'),
  frames: z.array(frameEntrySchema),
  /** Batch results replaced on a slow connection so far (src/server/outbox.ts); absent otherwise. */
  coalesced: z.number().int().positive().optional(),
});

export const windowResultSchema = z.strictObject({ ...resultFields, kind: z.literal('window') });

export const resultSchema = z.discriminatedUnion('kind', [batchResultSchema, windowResultSchema]);

export const errorMessageSchema = z.strictObject({
  type: z.literal('error'),
  code: errorCode,
  message: z.string(),
  seq: seq.optional(),
  fatal: z.boolean(),
});

export const noticeSchema = z.strictObject({
  type: z.literal('notice'),
  code: z.literal('rate_limited'),
  fps: z.number().positive(),
  message: z.string(),
});

export const throttleSchema = z.strictObject({
  type: z.literal('throttle'),
  fps: z.number().positive(),
  reason: z.enum(['overloaded', 'recovered']),
});

export const alignSchema = z.strictObject({ type: z.literal('align'), delayMs: z.number().int().positive() });

export const summarySchema = z.strictObject({
  type: z.literal('summary'),
  sessionId: z.string(),
  userId: z.string(),
  durationMs: count,
  framesReceived: count,
  /** Spelled so on the wire (protocol v1); `analysed` everywhere else. */
  framesAnalyzed: count,
  framesRejected: count,
  framesDropped: count,
  framesLost: count,
  rejected: z.partialRecord(errorCode, count),
  dropped: z.partialRecord(z.enum(DROP_REASONS), count),
  resyncs: count,
  /** Offsets are signed: a client clock ahead of the server's gives a negative skew. */
  clockSkewMs: z.number().int().nullable(),
  results: count,
  meanScore: score,
  stateSeconds: z.strictObject(Object.fromEntries(STATES.map((s) => [s, z.number().min(0)])) as Record<State, z.ZodNumber>),
});

export const serverMessageSchema = z.discriminatedUnion('type', [
  welcomeSchema,
  resultSchema,
  errorMessageSchema,
  noticeSchema,
  throttleSchema,
  alignSchema,
  summarySchema,
]);

export type WelcomeMessage = z.infer<typeof welcomeSchema>;
export type ResultCounts = z.infer<typeof countsSchema>;
export type FrameEntry = z.infer<typeof frameEntrySchema>;
export type BatchResultMessage = z.infer<typeof batchResultSchema>;
export type WindowResultMessage = z.infer<typeof windowResultSchema>;
export type ResultMessage = z.infer<typeof resultSchema>;
/** Built by `errorMessage` in src/handler/errors.ts, the registry of codes. */
export type ServerErrorMessage = z.infer<typeof errorMessageSchema>;
export type NoticeMessage = z.infer<typeof noticeSchema>;
export type ThrottleMessage = z.infer<typeof throttleSchema>;
export type AlignMessage = z.infer<typeof alignSchema>;
export type SummaryMessage = z.infer<typeof summarySchema>;
/** Every message the server sends a client. */
export type ServerMessage = z.infer<typeof serverMessageSchema>;

/** What the model said of a batch or a window (a worker's reply, checked at the IPC boundary). */
export type Outcome = OutcomeBody;

interface ResultInput {
  resultId: number;
  seqFrom: number;
  seqTo: number;
  /** Frames the model analysed: of the batch, or summed over the window's batches. */
  framesAnalysed: number;
  outcome: Outcome;
  counts: UnitCounts;
}

export interface BatchResultInput extends ResultInput {
  /** The model's entry for each frame it was sent, in seq order; empty for a shed or failed unit. */
  frames: ReadonlyArray<{ analysed: boolean; [key: string]: unknown }>;
  /** `seqs[i]` is the seq of `frames[i]`. */
  seqs: readonly number[];
}

/** The fields batch and window results share. */
const sharedResultFields = <K extends 'batch' | 'window'>(r: ResultInput, kind: K) => ({
  type: 'result' as const,
  kind,
  resultId: r.resultId,
  seqFrom: r.seqFrom,
  seqTo: r.seqTo,
  framesAnalyzed: r.framesAnalysed,
  score: r.outcome.score,
  state: r.outcome.state,
  signals: r.outcome.signals,
  counts: { ...r.counts },
});

export function batchResult(r: BatchResultInput): BatchResultMessage {
  if (r.seqs.length < r.frames.length) throw new RangeError(`${r.frames.length} frame entries for ${r.seqs.length} seqs`);
  return {
    ...sharedResultFields(r, 'batch'),
    // The seq is the server's: a model's own `seq` field does not name the frame.
    frames: r.frames.map((f, i) => ({ ...f, seq: r.seqs[i] })),
  };
}

export function windowResult(r: ResultInput): WindowResultMessage {
  return sharedResultFields(r, 'window');
}

export interface SummaryInput {
  sessionId: string;
  userId: string;
  durationMs: number;
  outcomes: FrameOutcomes;
  /** The session's estimated clock offset, ms; null before any frame reached the clock check. */
  clockSkewMs: number | null;
  /** Results sent (batch and window). */
  results: number;
  /** Batch scores weighted by their analysed frames, and those frames: the mean score's terms. */
  scoreSum: number;
  scoreFrames: number;
  stateSeconds: Record<State, number>;
}

const sum = (o: Partial<Record<string, number>>) => Object.values(o).reduce((a: number, b) => a + (b ?? 0), 0);
const tenths = (x: number) => Math.round(x * 10) / 10;

export function summaryMessage(s: SummaryInput): SummaryMessage {
  const o = s.outcomes;
  return {
    type: 'summary',
    sessionId: s.sessionId,
    userId: s.userId,
    // Instances' clocks differ: a session resumed on one that is behind must not last less than nothing.
    durationMs: Math.max(0, s.durationMs),
    framesReceived: o.received,
    framesAnalyzed: o.analysed,
    framesRejected: sum(o.rejected),
    framesDropped: sum(o.dropped),
    framesLost: o.lost,
    rejected: { ...o.rejected },
    dropped: { ...o.dropped },
    resyncs: o.resyncs,
    clockSkewMs: s.clockSkewMs === null ? null : Math.round(s.clockSkewMs),
    results: s.results,
    meanScore: s.scoreFrames > 0 ? tenths(s.scoreSum / s.scoreFrames) : null,
    stateSeconds: Object.fromEntries(STATES.map((k) => [k, tenths(s.stateSeconds[k])])) as Record<State, number>,
  };
}
