/**
 * The session record: what of a session outlives its connection and its
 * instance, as the session store keeps it (src/server/session-store.ts;
 * in Redis, one JSON value per session and a list of its window results).
 * Another instance, maybe of another version, resumes the session from it,
 * so a record is checked before anything reads it: one of another version
 * or one that is not what this file says is no record at all.
 */
import { z } from 'zod';
import type { FrameOutcomes, State } from '../handler/outcomes.js';
import { STATES } from '../handler/outcomes.js';
import type { UnitBuilderState } from '../handler/unit-builder.js';
import { countsSchema, frameEntrySchema, type ResultMessage, type WindowResultMessage } from './server-messages.js';

/**
 * The record format this server writes and reads. A change that an older
 * server would misread (a field renamed, or its meaning changed) takes a
 * new version: a record of another version is not resumed.
 */
export const SESSION_RECORD_VERSION = 1;

/**
 * Saved after every answered unit (a checkpoint: everything before
 * `expectedSeq` is in a sent result) and at drain.
 */
export interface SessionRecord {
  v: typeof SESSION_RECORD_VERSION;
  id: string;
  userId: string;
  /** SHA-256 (hex) of the resume token; the token itself is never stored. */
  resumeTokenHash?: string;
  /** The token itself, in records written before tokens were hashed: still honoured, never written. */
  resumeToken?: string;
  createdAt: number;
  /** The first seq not yet in a sent result. */
  expectedSeq: number | null;
  /** Later seqs whose outcome is already counted (refused, lost): not to be counted lost again. */
  accountedSeqs: number[];
  builder: UnitBuilderState | null;
  context: unknown;
  nextResultId: number;
  windowAnalysed: number;
  /** `received` counts only frames with an outcome. */
  outcomes: FrameOutcomes;
  stateSeconds: Record<State, number>;
  scoreSum: number;
  scoreFrames: number;
  /** The latest results, redelivered on resume (the client drops resultIds it has). */
  recent: ResultMessage[];
  windows: WindowResultMessage[];
  ended: boolean;
  updatedAt: number;
}

const count = z.number().int().min(0);
const seq = z.number().int().min(0);

/*
 * Stored results are replayed to a client as they are: loose, so that a
 * field a newer server added still reaches the client, but each must be a
 * result. Counts by code or reason take any key for the same reason.
 */
const storedResultFields = {
  type: z.literal('result'),
  resultId: z.number().int().min(1),
  seqFrom: seq,
  seqTo: seq,
  framesAnalyzed: count,
  score: z.number().min(0).max(100).nullable(),
  state: z.enum(STATES),
  signals: z.record(z.string(), z.unknown()),
  counts: countsSchema,
};
const storedBatchSchema = z.looseObject({ ...storedResultFields, kind: z.literal('batch'), frames: z.array(frameEntrySchema) });
export const storedWindowSchema = z.looseObject({ ...storedResultFields, kind: z.literal('window') });
const storedResultSchema = z.discriminatedUnion('kind', [storedBatchSchema, storedWindowSchema]);

const countsByKey = z.record(z.string(), count);

const recordSchema = z.object({
  v: z.literal(SESSION_RECORD_VERSION),
  id: z.string().min(1),
  userId: z.string().min(1),
  // Empty in a record of a session restored without a token: it reads, nobody resumes it.
  resumeTokenHash: z.string().regex(/^([0-9a-f]{64})?$/).optional(),
  resumeToken: z.string().optional(),
  createdAt: z.number(),
  expectedSeq: seq.nullable(),
  accountedSeqs: z.array(seq),
  builder: z
    .object({ base: seq.nullable(), windowOpen: z.boolean(), windowSeqFrom: seq, windowCounts: countsSchema })
    .nullable(),
  context: z.record(z.string(), z.unknown()).nullable(),
  nextResultId: z.number().int().min(1),
  windowAnalysed: count,
  outcomes: z.object({ received: count, analysed: count, rejected: countsByKey, dropped: countsByKey, lost: count, resyncs: count }),
  stateSeconds: z.object(Object.fromEntries(STATES.map((s) => [s, z.number().min(0)])) as Record<State, z.ZodNumber>),
  scoreSum: z.number().min(0),
  scoreFrames: count,
  recent: z.array(storedResultSchema),
  windows: z.array(storedWindowSchema),
  ended: z.boolean(),
  updatedAt: z.number(),
}) satisfies z.ZodType<SessionRecord>;

export type RecordCheck = { ok: true; record: SessionRecord } | { ok: false; reason: string };

/**
 * Whether `value` (a decoded record) is a record this server can resume
 * from. The reason names the version, or the fields and rules broken,
 * never their values: a record holds a student's results.
 */
export function checkSessionRecord(value: unknown): RecordCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'not a JSON object' };
  const v = (value as { v?: unknown }).v;
  if (v !== SESSION_RECORD_VERSION) {
    const found = typeof v === 'number' ? `version ${v}` : 'no version';
    return { ok: false, reason: `${found}; this server reads version ${SESSION_RECORD_VERSION}` };
  }
  const r = recordSchema.safeParse(value);
  if (r.success) return { ok: true, record: r.data };
  const issues = r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(record)'}: ${i.code}`);
  return { ok: false, reason: issues.join('; ') };
}
