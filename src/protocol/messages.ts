/**
 * The client protocol v1 and the formats around it, in one place: what a
 * client sends (client-messages.ts), what the server sends
 * (server-messages.ts), the close codes (close-codes.ts), the session record
 * instances share (session-record.ts), and what a model worker may answer
 * (src/ipc/messages.ts, re-exported here). docs/protocol.md describes them.
 */

export * from './client-messages.js';
export * from './server-messages.js';
export * from './close-codes.js';
export * from './session-record.js';
export {
  MAX_WORKER_MESSAGE_BYTES,
  MODEL_STATES,
  parseError,
  parseInitFailed,
  parseReady,
  parseResult,
  ReplyError,
  type ErrorBody,
  type InitFailedBody,
  type ModelState,
  type OutcomeBody,
  type ReadyBody,
  type ResultBody,
  type ResultRequest,
} from '../ipc/messages.js';
