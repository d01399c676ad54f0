/**
 * The WebSocket close codes of the client protocol, by name: when each is
 * sent and whether a client reconnects after it. The server closes with
 * these names, docs/errors.md ("Close codes") renders the table, and the
 * browser client (web/jipjung-client.js, plain JS that cannot import this
 * file) carries a copy of the `code` and retry columns;
 * test/protocol-close-codes.test.ts keeps the three equal.
 */

/**
 * Whether a client reconnects (and resumes) after the close: `no` when
 * retrying cannot help, `unless_ended` when it can only if the server has
 * not ended the session (no summary came).
 */
export type CloseRetry = 'yes' | 'no' | 'unless_ended';

export interface CloseCodeSpec {
  code: number;
  /** When the server closes with it, as docs/errors.md says it. */
  sent: string;
  retry: CloseRetry;
  /** The least wait before reconnecting, ms (the client's backoff cap still bounds it). */
  minRetryDelayMs?: number;
  /** The close reason is JSON whose `retryAfterMs` is the least wait before reconnecting. */
  retryAfterInReason?: boolean;
}

export const CLOSE_CODES = {
  normal: { code: 1000, sent: 'Normal end, after `bye` and the summary (reason `bye`).', retry: 'unless_ended' },
  going_away: {
    code: 1001,
    sent: 'The instance closes without a drain (reason `server shutting down`); a signal drains first, so clients see 1012.',
    retry: 'yes',
  },
  abnormal: {
    code: 1006,
    sent: 'Never in a close frame: what a client sees when the connection ends without one (a missed heartbeat, a stuck slow consumer, a killed instance, the network).',
    retry: 'yes',
  },
  policy_violation: { code: 1008, sent: '`hello_required`; `rate_limited` (frames, or more than 20 text messages a second).', retry: 'no' },
  message_too_big: { code: 1009, sent: 'A message larger than `MAX_FRAME_BYTES` + 64 KiB, closed by the WebSocket layer.', retry: 'no' },
  internal: { code: 1011, sent: 'Reserved for `internal`; not sent by the server today.', retry: 'yes' },
  restart: {
    code: 1012,
    sent: 'The instance is draining (deploy, scale-in); the reason is JSON, `{"reason":"restart","retryAfterMs":1000}`. Reconnect after that delay with `sessionId` and `resumeToken`: the session resumes on another instance.',
    retry: 'yes',
    retryAfterInReason: true,
  },
  // "Try again later": an immediate retry would meet the same refusal.
  overloaded: { code: 1013, sent: '`overloaded`, in answer to `hello` (also while draining): try again later.', retry: 'yes', minRetryDelayMs: 5000 },
  unauthorized: {
    code: 4401,
    sent: '`unauthorized`: the hello\'s token is refused, or the token expired during the session. Get a new token before reconnecting.',
    retry: 'no',
  },
  session_replaced: { code: 4409, sent: '`session_replaced`: another connection resumed the session and holds it now.', retry: 'no' },
  too_many_sessions: { code: 4429, sent: '`too_many_sessions`, in answer to `hello`.', retry: 'no' },
} as const satisfies Record<string, CloseCodeSpec>;

export type CloseCodeName = keyof typeof CLOSE_CODES;
export type CloseCode = (typeof CLOSE_CODES)[CloseCodeName]['code'];

const NAMES = new Map<number, CloseCodeName>(Object.entries(CLOSE_CODES).map(([name, spec]) => [spec.code, name as CloseCodeName]));

/** The name of a close code of the protocol, or undefined for any other code. */
export const closeCodeName = (code: number): CloseCodeName | undefined => NAMES.get(code);
