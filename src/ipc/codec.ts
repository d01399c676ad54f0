/**
 * The IPC wire codec between the server and its Python workers, pure code:
 * bytes in, messages out, and back. Mirrors model/jipjung_model/codec.py;
 * docs/protocol.md ("IPC protocol") has the byte tables and
 * test/golden/ipc/ holds the golden files both sides decode.
 *
 *   0  u32  length of everything after this field (big-endian)
 *   4  u8   type
 *   5  u8   flags, 0
 *   6  u16  reserved, 0
 *   8  u32  request id, 0 when the message answers no request
 *   12 ...  payload: JSON, or for ANALYSE and FRAME: u32 meta length,
 *           meta JSON, u16 frame count, then per frame u32 length + image
 *           bytes (a FRAME carries exactly one)
 */

export const HEADER_BYTES = 12;
export const IPC_PROTOCOL_VERSION = 2;
/** A security limit: a length above it means a corrupt stream, not a message. */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

export enum MessageType {
  Ready = 1,
  InitFailed = 2,
  Analyse = 3,
  Result = 4,
  Error = 5,
  Shutdown = 6,
  Open = 7,
  Frame = 8,
  Close = 9,
  FrameDone = 10,
}

export interface FrameMeta {
  seq: number;
  captureTs: number;
  format: number;
  /** Size from the JPEG header; the worker checks the decoded image against it. */
  width?: number;
  height?: number;
}

export interface AnalyseMeta {
  session: string;
  closesWindow: boolean;
  batchFrames: number;
  windowFrames: number;
  fps: number;
  frames: FrameMeta[];
  context: unknown;
}

/** What opens a unit that is sent frame by frame (OPEN). */
export interface OpenMeta {
  session: string;
  batchFrames: number;
  windowFrames: number;
  fps: number;
  context: unknown;
}

/**
 * Messages from a worker, as decoded: a JSON body of any shape. Nothing
 * reads a body before messages.ts has checked it.
 */
export type WorkerMessage =
  | { type: MessageType.Ready; id: number; body: unknown }
  | { type: MessageType.InitFailed; id: number; body: unknown }
  | { type: MessageType.Result; id: number; body: unknown }
  | { type: MessageType.Error; id: number; body: unknown }
  | { type: MessageType.FrameDone; id: number; body: unknown };

export type ServerMessage =
  | { type: MessageType.Analyse; id: number; meta: AnalyseMeta; frames: Buffer[] }
  | { type: MessageType.Open; id: number; body: OpenMeta }
  | { type: MessageType.Frame; id: number; meta: FrameMeta; frames: [Buffer] }
  | { type: MessageType.Close; id: number; body: { closesWindow: boolean } }
  | { type: MessageType.Shutdown; id: number };

export type Message = WorkerMessage | ServerMessage;

export class CodecError extends Error {
  override name = 'CodecError';
}

function header(length: number, type: MessageType, id: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt32BE(length + HEADER_BYTES - 4, 0);
  h.writeUInt8(type, 4);
  h.writeUInt8(0, 5);
  h.writeUInt16BE(0, 6);
  h.writeUInt32BE(id, 8);
  return h;
}

/**
 * Encode as a list of buffers so image bytes are written to the pipe as
 * they are, never copied into one big buffer.
 */
export function encode(message: Message): Buffer[] {
  switch (message.type) {
    case MessageType.Analyse:
    case MessageType.Frame: {
      const meta = Buffer.from(JSON.stringify(message.meta));
      if (message.frames.length > 0xffff) throw new CodecError('too many frames in one ANALYSE');
      if (message.type === MessageType.Frame && message.frames.length !== 1) throw new CodecError('a FRAME carries exactly one frame');
      const pre = Buffer.allocUnsafe(4 + meta.length + 2);
      pre.writeUInt32BE(meta.length, 0);
      meta.copy(pre, 4);
      pre.writeUInt16BE(message.frames.length, 4 + meta.length);
      const parts: Buffer[] = [pre];
      let length = pre.length;
      for (const frame of message.frames) {
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32BE(frame.length, 0);
        parts.push(len, frame);
        length += 4 + frame.length;
      }
      return [header(length, message.type, message.id), ...parts];
    }
    case MessageType.Shutdown:
      return [header(0, message.type, message.id)];
    default: {
      const body = Buffer.from(JSON.stringify(message.body));
      return [header(body.length, message.type, message.id), body];
    }
  }
}

export function encodeToBuffer(message: Message): Buffer {
  return Buffer.concat(encode(message));
}

function decodeJson(payload: Buffer, what: string): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    // Not the parser's message: it quotes the bytes, and they are the sender's, not ours to log.
    throw new CodecError(`bad JSON in ${what} (${payload.length} bytes)`);
  }
}

/** The ANALYSE layout, shared by FRAME: meta JSON and the images. */
function decodeImages(payload: Buffer, what: string): { meta: unknown; frames: Buffer[] } {
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > payload.length) throw new CodecError(`${what} payload is truncated`);
  };
  need(4);
  const metaLen = payload.readUInt32BE(pos);
  pos += 4;
  need(metaLen);
  const meta = decodeJson(payload.subarray(pos, pos + metaLen), `${what} meta`);
  pos += metaLen;
  need(2);
  const count = payload.readUInt16BE(pos);
  pos += 2;
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    need(4);
    const len = payload.readUInt32BE(pos);
    pos += 4;
    need(len);
    frames.push(payload.subarray(pos, pos + len));
    pos += len;
  }
  if (pos !== payload.length) throw new CodecError(`${payload.length - pos} trailing bytes after ${what} frames`);
  return { meta, frames };
}

export function decodeBody(type: number, id: number, payload: Buffer): Message {
  switch (type) {
    case MessageType.Analyse: {
      const { meta, frames } = decodeImages(payload, 'ANALYSE');
      return { type, id, meta: meta as AnalyseMeta, frames };
    }
    case MessageType.Frame: {
      const { meta, frames } = decodeImages(payload, 'FRAME');
      if (frames.length !== 1) throw new CodecError(`a FRAME carries exactly one frame, not ${frames.length}`);
      return { type, id, meta: meta as FrameMeta, frames: [frames[0]] };
    }
    case MessageType.Open:
      return { type, id, body: decodeJson(payload, 'OPEN') as OpenMeta };
    case MessageType.Close:
      return { type, id, body: decodeJson(payload, 'CLOSE') as { closesWindow: boolean } };
    case MessageType.Shutdown:
      return { type, id };
    case MessageType.Ready:
    case MessageType.InitFailed:
    case MessageType.Result:
    case MessageType.Error:
    case MessageType.FrameDone:
      return { type, id, body: decodeJson(payload, MessageType[type].toUpperCase()) } as WorkerMessage;
    default:
      throw new CodecError(`unknown message type ${type}`);
  }
}

/** Incremental decoder: push chunks as the pipe delivers them. */
export class Decoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** `maxMessageBytes`: a longer message is a corrupt stream (a security limit). */
  constructor(private readonly maxMessageBytes = MAX_MESSAGE_BYTES) {}

  push(chunk: Buffer): Message[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Message[] = [];
    while (this.buffered >= HEADER_BYTES) {
      const head = this.peek(HEADER_BYTES);
      const length = head.readUInt32BE(0);
      if (length < HEADER_BYTES - 4 || length > this.maxMessageBytes) {
        throw new CodecError(`message length ${length} out of range`);
      }
      const total = length + 4;
      if (this.buffered < total) break;
      const whole = this.take(total);
      out.push(decodeBody(whole.readUInt8(4), whole.readUInt32BE(8), whole.subarray(HEADER_BYTES)));
    }
    return out;
  }

  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
