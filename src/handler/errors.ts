/**
 * The one registry of errors the server reports to clients. Each code is
 * stable (clients match on it) and documented in docs/errors.md;
 * test/errors.test.ts keeps the two in step.
 */
import { CLOSE_CODES, type CloseCode } from '../protocol/close-codes.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface ErrorSpec {
  /** Message sent to the client unless a more specific one is given. */
  message: string;
  /** Level at which the server logs it. */
  logLevel: LogLevel;
  /** Fatal errors end the session with `closeCode`. */
  fatal: boolean;
  closeCode?: CloseCode;
}

export const ERRORS = {
  hello_required: {
    message: 'the first message must be {"type":"hello"}, sent within the hello timeout',
    logLevel: 'info',
    fatal: true,
    closeCode: CLOSE_CODES.policy_violation.code,
  },
  bad_message: {
    message: 'the text message is not a valid control message',
    logLevel: 'info',
    fatal: false,
  },
  unsupported_version: {
    message: 'the frame header version is not supported (expected 1)',
    logLevel: 'info',
    fatal: false,
  },
  unsupported_format: {
    message: 'the frame format is not supported (1 = JPEG)',
    logLevel: 'info',
    fatal: false,
  },
  frame_too_large: {
    message: 'the frame is larger than maxFrameBytes',
    logLevel: 'info',
    fatal: false,
  },
  frame_invalid: {
    message: 'the frame is malformed: a 16-byte header followed by an image is expected',
    logLevel: 'info',
    fatal: false,
  },
  jpeg_invalid: {
    message: 'the image is not a well-formed JPEG (SOI, marker segments, a start-of-frame, scan data)',
    logLevel: 'info',
    fatal: false,
  },
  jpeg_truncated: {
    message: 'the JPEG image is truncated (no EOI marker at its end)',
    logLevel: 'info',
    fatal: false,
  },
  image_too_large: {
    message: 'the image width or height is above the limit',
    logLevel: 'info',
    fatal: false,
  },
  image_undecodable: {
    message: 'the image passed the structural checks but could not be decoded, or decoded to another size than its header says',
    logLevel: 'info',
    fatal: false,
  },
  timestamp_invalid: {
    message: 'captureTs is far from the session\'s clock, or runs backwards while seq runs forwards',
    logLevel: 'info',
    fatal: false,
  },
  rate_limited: {
    message: 'frames were sent far faster than the announced fps for too long',
    logLevel: 'warn',
    fatal: true,
    closeCode: CLOSE_CODES.policy_violation.code,
  },
  model_error: {
    message: 'the model could not analyse these frames; the session goes on',
    logLevel: 'warn',
    fatal: false,
  },
  unauthorized: {
    message: 'the token is missing, invalid or expired',
    logLevel: 'info',
    fatal: true,
    closeCode: CLOSE_CODES.unauthorized.code,
  },
  too_many_sessions: {
    message: 'this user already has the most sessions allowed open',
    logLevel: 'info',
    fatal: true,
    closeCode: CLOSE_CODES.too_many_sessions.code,
  },
  session_replaced: {
    message: 'the session was resumed on another connection',
    logLevel: 'info',
    fatal: true,
    closeCode: CLOSE_CODES.session_replaced.code,
  },
  overloaded: {
    message: 'the server is overloaded; try again later',
    logLevel: 'warn',
    fatal: true,
    closeCode: CLOSE_CODES.overloaded.code,
  },
  internal: {
    message: 'an internal error occurred',
    logLevel: 'error',
    fatal: true,
    closeCode: CLOSE_CODES.internal.code,
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export const errorSpec = (code: ErrorCode): ErrorSpec => ERRORS[code];

export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
  seq?: number;
  fatal: boolean;
}

export function errorMessage(code: ErrorCode, extra: { seq?: number; message?: string } = {}): ErrorMessage {
  const spec: ErrorSpec = ERRORS[code];
  const msg: ErrorMessage = { type: 'error', code, message: extra.message ?? spec.message, fatal: spec.fatal };
  if (extra.seq !== undefined) msg.seq = extra.seq;
  return msg;
}
