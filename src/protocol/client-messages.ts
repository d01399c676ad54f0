/**
 * What a client may send as text (JSON control messages): one schema per
 * message, one discriminated union over them. docs/protocol.md
 * ("Connection and handshake") describes each field and its bound;
 * src/handler/control.ts parses through these.
 */
import { z } from 'zod';

/** A security limit on one control message, in characters: a hello is a few hundred. */
export const MAX_CONTROL_BYTES = 16 * 1024;

export const helloSchema = z.object({
  type: z.literal('hello'),
  /** The JWT; never logged. */
  token: z.string().max(8192).optional(),
  sessionId: z.string().max(128).optional(),
  resumeToken: z.string().max(256).optional(),
  /**
   * The highest resultId the client has, on a resume. Any other value is
   * ignored rather than refused: the hello still opens or resumes a session,
   * the client only gets more replayed results than it needed.
   */
  lastResultId: z.number().int().min(0).optional().catch(undefined),
  /** The client's self-description; only some of it is logged (clientLogFields). */
  client: z.record(z.string(), z.unknown()).optional(),
});

export const byeSchema = z.object({ type: z.literal('bye') });

export const clientMessageSchema = z.discriminatedUnion('type', [helloSchema, byeSchema]);

export type HelloMessage = z.infer<typeof helloSchema>;
export type ByeMessage = z.infer<typeof byeSchema>;
/** A control message a client sends. */
export type ClientMessage = z.infer<typeof clientMessageSchema>;
