/**
 * What a worker may send, checked where it enters the server. The codec
 * turns bytes into messages whose JSON bodies may have any shape; these
 * schemas decide whether a body is what docs/protocol.md ("Messages") says.
 * Nothing a worker sends reaches a session, a metric or a client before it
 * passed here, and what passes carries only the fields named below (frame
 * entries keep the model's own fields: JSON for the client).
 *
 * Mirrored by `check_result_body` in model/jipjung_model/worker.py (and the
 * model contract in interface.py's `validate_result`);
 * test/golden/ipc/replies.json holds bodies both sides must judge alike.
 */
import { z } from 'zod';

/** The closed set of states a model reports; the same as STATES in interface.py. */
export const MODEL_STATES = ['focused', 'distracted', 'drowsy', 'absent', 'unknown'] as const;
export type ModelState = (typeof MODEL_STATES)[number];

/**
 * A security limit on one message from a worker: a RESULT is JSON about a
 * few frames (kilobytes), so a length above this means a broken or hostile
 * worker, not a message to buffer.
 */
export const MAX_WORKER_MESSAGE_BYTES = 16 * 1024 * 1024;

const jsonObject = z.record(z.string(), z.unknown());

const outcomeSchema = z.object({
  score: z.number().min(0).max(100).nullable(),
  state: z.enum(MODEL_STATES),
  signals: jsonObject,
});

const resultSchema = z.object({
  frames: z.array(z.looseObject({ analysed: z.boolean() })),
  batch: outcomeSchema,
  window: outcomeSchema.nullable(),
  context: jsonObject.nullable(),
  modelMs: z.number().min(0),
});

const readySchema = z.object({
  protocol: z.number().int(),
  model: z.string(),
  version: z.string(),
  pid: z.number().int().positive(),
  python: z.string().optional(),
});

const initFailedSchema = z.object({ message: z.string(), model: z.string().optional() });

const errorSchema = z.object({ code: z.string(), message: z.string() });

const frameDoneSchema = z.object({ seq: z.number().int().min(0), modelMs: z.number().min(0) });

export type OutcomeBody = z.infer<typeof outcomeSchema>;
export type ResultBody = z.infer<typeof resultSchema>;
export type ReadyBody = z.infer<typeof readySchema>;
export type InitFailedBody = z.infer<typeof initFailedSchema>;
export type ErrorBody = z.infer<typeof errorSchema>;
export type FrameDoneBody = z.infer<typeof frameDoneSchema>;

/** What the request a RESULT answers asked for. */
export interface ResultRequest {
  frames: number;
  closesWindow: boolean;
}

/** A body that is not what the protocol says. The message names paths and rules, never the values sent. */
export class ReplyError extends Error {
  override name = 'ReplyError';
}

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 3).map((i) => `${[what, ...i.path].join('.')}: ${i.code}${'expected' in i ? ` (expected ${String(i.expected)})` : ''}`);
  throw new ReplyError(issues.join('; '));
}

export function parseResult(body: unknown, request: ResultRequest): ResultBody {
  const result = parse(resultSchema, body, 'RESULT');
  if (result.frames.length !== request.frames) {
    throw new ReplyError(`RESULT.frames: ${result.frames.length} entries for ${request.frames} frames`);
  }
  if (request.closesWindow && result.window === null) throw new ReplyError('RESULT.window: null, but the unit closes a window');
  return result;
}

export const parseReady = (body: unknown): ReadyBody => parse(readySchema, body, 'READY');
export const parseInitFailed = (body: unknown): InitFailedBody => parse(initFailedSchema, body, 'INIT_FAILED');
export const parseError = (body: unknown): ErrorBody => parse(errorSchema, body, 'ERROR');

/**
 * A FRAME_DONE must name the seq of the frame it acknowledges: a worker
 * acknowledges a unit's frames in order. One arrives per frame, so the
 * usual body is checked by hand, and only one that fails goes through the
 * schema, for its message.
 */
export function parseFrameDone(body: unknown, seq: number): FrameDoneBody {
  const b = body as Partial<FrameDoneBody> | null;
  const plain =
    typeof b === 'object' && b !== null && !Array.isArray(b) && typeof b.modelMs === 'number' && Number.isFinite(b.modelMs) && b.modelMs >= 0 && Number.isSafeInteger(b.seq) && b.seq! >= 0;
  const done = plain ? { seq: b.seq!, modelMs: b.modelMs! } : parse(frameDoneSchema, body, 'FRAME_DONE');
  if (done.seq !== seq) throw new ReplyError(`FRAME_DONE.seq: not the seq of the frame awaiting it`);
  return done;
}
