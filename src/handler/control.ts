/**
 * Client control messages (JSON text), pure code. Parsing never throws:
 * anything that is not one of the messages of src/protocol/client-messages.ts
 * is `null`.
 */
import { clientMessageSchema, MAX_CONTROL_BYTES, type ClientMessage } from '../protocol/client-messages.js';

export { MAX_CONTROL_BYTES, type ByeMessage, type HelloMessage } from '../protocol/client-messages.js';
export type ControlMessage = ClientMessage;

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

export function parseControl(text: string): ControlMessage | null {
  // Before JSON.parse: the cost of parsing must not grow with what a client chooses to send.
  if (text.length > MAX_CONTROL_BYTES) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = clientMessageSchema.safeParse(value);
  if (!parsed.success) return null;
  const msg = parsed.data;
  if (msg.type === 'hello' && msg.lastResultId === undefined) delete msg.lastResultId; // ignored, not there
  return msg;
}
