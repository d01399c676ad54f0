/**
 * Client control messages (JSON text), pure code. Parsing never throws:
 * anything that is not one of the known messages is `null`.
 */

export const MAX_CONTROL_BYTES = 16 * 1024;

export interface HelloMessage {
  type: 'hello';
  token?: string;
  sessionId?: string;
  resumeToken?: string;
  /** The highest resultId the client has (on resume). */
  lastResultId?: number;
  client?: Record<string, unknown>;
}

export interface ByeMessage {
  type: 'bye';
}

export type ControlMessage = HelloMessage | ByeMessage;

/** The fields of `hello.client` that go into the logs, and how long each string may be there. */
const CLIENT_LOG_STRINGS = ['library', 'version', 'encoder'] as const;
const CLIENT_LOG_NUMBERS = ['width', 'height'] as const;
const CLIENT_LOG_MAX_CHARS = 64;

export type ClientLogFields = Partial<Record<(typeof CLIENT_LOG_STRINGS)[number], string> & Record<(typeof CLIENT_LOG_NUMBERS)[number], number>>;

/**
 * What of `hello.client` is logged: the client library, its version, the
 * frame size and encoder, each only of its type and cut to a length.
 * Everything else a client put there (an integrator's user details, or
 * 16 KiB of anything) stays out of the logs.
 */
export function clientLogFields(client: Record<string, unknown> | undefined): ClientLogFields | undefined {
  if (client === undefined) return undefined;
  const out: Record<string, string | number> = {};
  for (const key of CLIENT_LOG_STRINGS) {
    const v = client[key];
    if (typeof v === 'string') out[key] = v.slice(0, CLIENT_LOG_MAX_CHARS);
  }
  for (const key of CLIENT_LOG_NUMBERS) {
    const v = client[key];
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 100_000) out[key] = v;
  }
  return out;
}

const optionalString = (v: unknown, max: number): v is string | undefined =>
  v === undefined || (typeof v === 'string' && v.length <= max);

export function parseControl(text: string): ControlMessage | null {
  if (text.length > MAX_CONTROL_BYTES) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const msg = value as Record<string, unknown>;
  switch (msg.type) {
    case 'hello': {
      if (!optionalString(msg.token, 8192) || !optionalString(msg.sessionId, 128) || !optionalString(msg.resumeToken, 256)) {
        return null;
      }
      const client = msg.client;
      if (client !== undefined && (typeof client !== 'object' || client === null || Array.isArray(client))) return null;
      const hello: HelloMessage = { type: 'hello' };
      if (msg.token !== undefined) hello.token = msg.token;
      if (msg.sessionId !== undefined) hello.sessionId = msg.sessionId;
      if (msg.resumeToken !== undefined) hello.resumeToken = msg.resumeToken;
      if (typeof msg.lastResultId === 'number' && Number.isInteger(msg.lastResultId) && msg.lastResultId >= 0) hello.lastResultId = msg.lastResultId;
      if (client !== undefined) hello.client = client as Record<string, unknown>;
      return hello;
    }
    case 'bye':
      return { type: 'bye' };
    default:
      return null;
  }
}
