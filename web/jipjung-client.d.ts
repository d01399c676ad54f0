/**
 * Types of web/jipjung-client.js, the jipjung browser client (protocol v1).
 * See docs/client.md.
 */

export declare const PROTOCOL_VERSION: 1;
export declare const STREAM_PATH: '/v1/stream';
export declare const FRAME_HEADER_BYTES: 16;
export declare const FRAME_VERSION: 1;
export declare const FORMAT_JPEG: 1;
export declare const CLIENT_VERSION: string;
/** The close codes of protocol v1 by name (src/protocol/close-codes.ts). */
export type CloseCodeName =
  | 'normal'
  | 'going_away'
  | 'abnormal'
  | 'policy_violation'
  | 'message_too_big'
  | 'internal'
  | 'restart'
  | 'overloaded'
  | 'unauthorized'
  | 'session_replaced'
  | 'too_many_sessions';
export interface CloseRule {
  readonly code: number;
  /** 'no': retrying cannot help; 'unless_ended': not once the server sent the summary. */
  readonly retry: 'yes' | 'no' | 'unless_ended';
  /** The least wait before reconnecting, ms (within `retryCapMs`). */
  readonly minRetryDelayMs?: number;
  /** The close reason is JSON whose `retryAfterMs` is the least wait before reconnecting. */
  readonly retryAfterInReason?: boolean;
}
/** What the client does after each close code; codes not listed are retried. */
export declare const CLOSE_CODES: Readonly<Record<CloseCodeName, CloseRule>>;
/** The name and rule of a close code, or null for a code the protocol does not name. */
export declare function closeRule(code: number): (CloseRule & { name: CloseCodeName }) | null;
/** Close codes after which the client does not reconnect. */
export declare const NO_RETRY_CLOSE_CODES: readonly number[];
/** The `retryAfterMs` of a 1012 close reason (JSON), or 0. */
export declare function retryAfterOf(reason: string): number;

export type Status = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
export type State = 'focused' | 'distracted' | 'drowsy' | 'absent' | 'unknown';
export type EncoderMode = 'worker' | 'offscreen' | 'canvas';

export interface JipjungClientOptions {
  /** Stream endpoint. Default: `/v1/stream` on the page's host, `wss:` on https pages. */
  url?: string;
  /** At most this many frames a second; the server's `welcome.fps` is the upper bound. */
  fps?: number;
  /** Size of the frames sent, px. The camera image is centre-cropped to this aspect ratio, then scaled. Default 640×480. */
  width?: number;
  height?: number;
  /** JPEG quality, 0-1. Default 0.7. */
  quality?: number;
  /** Element that shows the camera. A detached one is used otherwise. */
  video?: HTMLVideoElement;
  /** Sent as `hello.token`. */
  token?: string;
  /** Merged into `hello.client`. */
  clientInfo?: Record<string, unknown>;
  /** Where JPEG encoding runs. Default 'auto': a worker when the browser can. */
  encoder?: 'auto' | EncoderMode;
  /** Reconnect backoff: full jitter in [0, min(cap, base·2^attempt)). Defaults 500 and 15000 ms. */
  retryBaseMs?: number;
  retryCapMs?: number;
  /** Time allowed for the socket to open and the welcome to arrive. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** Time stop() waits for the summary. Default 10000 ms. */
  stopTimeoutMs?: number;
}

/*
 * The messages the server sends (protocol v1; docs/protocol.md). Each may
 * gain fields in a later server: read the ones named here and ignore the
 * rest. test/protocol-client-types.test.ts checks these against the
 * server's own types.
 */

export interface Welcome {
  type: 'welcome';
  protocol: 1;
  sessionId: string;
  /** Resumes this session on a later connection; every welcome brings a new one. */
  resumeToken: string;
  /** The hello's session was resumed (false: a new one was opened). */
  resumed: boolean;
  /** The resultId of the next new result; replayed results right after the welcome are below it. */
  nextResultId: number;
  fps: number;
  batchFrames: number;
  windowFrames: number;
  maxFrameBytes: number;
  model: { name: string; version: string } | null;
  auth: 'secret' | 'jwks' | 'demo';
  [key: string]: unknown;
}

export interface FrameResult {
  /** Set by the server. */
  seq: number;
  /** False when the frame could not be decoded (an `image_undecodable` error says so). */
  analysed: boolean;
  /** [x, y, w, h], normalised to the frame sent. */
  box?: [number, number, number, number] | null;
  face?: boolean;
  yaw?: number | null;
  pitch?: number | null;
  roll?: number | null;
  state?: State;
  score?: number | null;
  [key: string]: unknown;
}

/** What lowered a unit's score, most important first (the default model; docs/model.md). */
export type ReasonCode =
  | 'no-face'
  | 'head-turned'
  | 'head-down'
  | 'head-up'
  | 'head-tilted'
  | 'off-centre'
  | 'eyes-closed'
  | 'eyes-heavy'
  | 'poor-image';

/**
 * A result's `signals`: the model's own object, passed through. The keys
 * below are the default model's; another model sends its own, and a unit
 * answered without the model has `{}` or `{error}`.
 */
export interface Signals {
  /** The score's factors, 0..1 (score = 100 × their product per frame, averaged); null when no frame was usable. */
  components?: { presence: number; attention: number; alertness: number } | null;
  /** Empty: nothing lowered the score. Codes may be added: ignore the ones you do not know. */
  reasons?: Array<ReasonCode | (string & {})>;
  /** While the model learns the student's usual posture and eyes, then their neutral pose. */
  calibration?:
    | { running: true; progress: number; samples: number }
    | { running: false; progress: 1; yaw0: number | null; pitch0: number | null; eyes0: number | null };
  facePresent?: number | null;
  /** Degrees: positive pitch is head down, positive yaw the nose towards the image's right. */
  yaw?: number | null;
  pitch?: number | null;
  roll?: number | null;
  eyeOpenness?: number | null;
  perclos?: number | null;
  /** Frames by image-quality flag: dark, overexposed, flat, blurry, frozen. */
  qualityFlags?: Record<string, number>;
  multipleFaces?: boolean;
  error?: string;
  [key: string]: unknown;
}

/** What became of a result's seq slots. */
export interface ResultCounts {
  lost: number;
  rejected: number;
  duplicate: number;
  late: number;
  rateLimited: number;
  shed: number;
}

interface ResultFields {
  type: 'result';
  resultId: number;
  seqFrom: number;
  seqTo: number;
  /** Spelled so on the wire. */
  framesAnalyzed: number;
  score: number | null;
  state: State;
  signals: Signals;
  counts: ResultCounts;
  [key: string]: unknown;
}

export interface BatchResult extends ResultFields {
  kind: 'batch';
  /** One entry per frame sent to the model, in seq order; empty for a shed or failed unit. */
  frames: FrameResult[];
  /** Batch results replaced on a slow connection so far; absent otherwise. */
  coalesced?: number;
}

export interface WindowResult extends ResultFields {
  kind: 'window';
}

export type Result = BatchResult | WindowResult;

/** The server's error codes (docs/errors.md). */
export type ServerErrorCode =
  | 'hello_required'
  | 'bad_message'
  | 'unsupported_version'
  | 'unsupported_format'
  | 'frame_too_large'
  | 'frame_invalid'
  | 'jpeg_invalid'
  | 'jpeg_truncated'
  | 'image_too_large'
  | 'image_undecodable'
  | 'timestamp_invalid'
  | 'rate_limited'
  | 'model_error'
  | 'unauthorized'
  | 'too_many_sessions'
  | 'session_replaced'
  | 'overloaded'
  | 'internal';

export type DropReason = 'duplicate' | 'late' | 'rate_limited' | 'shed' | 'model_error' | 'session_closed';

export interface ServerError {
  type: 'error';
  code: ServerErrorCode;
  message: string;
  /** The frame it concerns, when its header could be read. */
  seq?: number;
  /** A fatal error is followed by a close. */
  fatal: boolean;
  [key: string]: unknown;
}

export interface NoticeMessage {
  type: 'notice';
  code: 'rate_limited';
  fps: number;
  message: string;
  [key: string]: unknown;
}

export interface ThrottleMessage {
  type: 'throttle';
  /** Frames a second to send at most from now on. */
  fps: number;
  reason: 'overloaded' | 'recovered';
  [key: string]: unknown;
}

export interface AlignMessage {
  type: 'align';
  /** The next capture, and so every later one, comes this many ms later. */
  delayMs: number;
  [key: string]: unknown;
}

export interface Summary {
  type: 'summary';
  sessionId: string;
  userId: string;
  durationMs: number;
  /** framesAnalyzed + framesRejected + framesDropped. */
  framesReceived: number;
  framesAnalyzed: number;
  framesRejected: number;
  framesDropped: number;
  /** Seqs never received. */
  framesLost: number;
  rejected: Partial<Record<ServerErrorCode, number>>;
  dropped: Partial<Record<DropReason, number>>;
  resyncs: number;
  clockSkewMs: number | null;
  /** Results sent, batch and window. */
  results: number;
  meanScore: number | null;
  stateSeconds: Record<State, number>;
  [key: string]: unknown;
}

/** Every message the server sends. */
export type ServerMessage = Welcome | BatchResult | WindowResult | ServerError | NoticeMessage | ThrottleMessage | AlignMessage | Summary;

export interface ErrorDetail {
  /** Server codes (docs/errors.md) or client codes: camera_denied, camera_not_found, camera_busy, camera_unavailable, camera_error, unreachable, overloaded, policy_violation, message_too_big, unauthorized, closed, bad_url. */
  code: string;
  message: string;
  fatal: boolean;
  source: 'server' | 'client';
  seq?: number;
  closeCode?: number;
}

export interface StatusDetail {
  status: Status;
  /** Close code that caused `reconnecting` / `closed`. */
  code?: number | null;
  reason?: string;
  /** Reconnect attempt number (1 for the first retry) and its delay. */
  attempt?: number;
  delayMs?: number;
}

export interface SessionDetail {
  kind: 'new' | 'resumed';
  sessionId: string;
  /** The session before this welcome; null on the first. A `new` kind with a previous id means the server did not resume it. */
  previousSessionId: string | null;
}

export interface StateDetail {
  state: State;
  previous: State | null;
  score: number | null;
  result: Result;
}

export interface ThrottleDetail extends ThrottleMessage {
  /** The fps the client captures at from now on (0: paused). */
  effectiveFps: number;
}

export type AlignDetail = AlignMessage;

export type NoticeDetail = NoticeMessage;

export interface FrameDetail {
  seq: number;
  captureTs: number;
  bytes: number;
  sessionId: string | null;
}

export interface JipjungEventMap {
  status: StatusDetail;
  welcome: Welcome;
  session: SessionDetail;
  result: Result;
  state: StateDetail;
  error: ErrorDetail;
  throttle: ThrottleDetail;
  align: AlignDetail;
  notice: NoticeDetail;
  summary: Summary;
  frame: FrameDetail;
}

export interface ClientStats {
  framesSent: number;
  bytesSent: number;
  sessionFramesSent: number;
  skippedEncoding: number;
  skippedBuffered: number;
  reconnects: number;
}

export declare class JipjungError extends Error {
  constructor(code: string, message: string, opts?: { fatal?: boolean; cause?: unknown });
  readonly code: string;
  readonly fatal: boolean;
}

export declare class JipjungClient extends EventTarget {
  constructor(options?: JipjungClientOptions);
  /** The options with their defaults filled in. */
  readonly options: Readonly<Required<Omit<JipjungClientOptions, 'fps' | 'video' | 'token'>> & { fps?: number; video: HTMLVideoElement | null; token?: string }>;
  readonly status: Status;
  /** The welcome of the open connection, null between connections. */
  readonly welcome: Welcome | null;
  readonly sessionId: string | null;
  readonly summary: Summary | null;
  /** State of the last batch result. */
  readonly state: State | null;
  /** fps of the last throttle, null when not throttled. */
  readonly throttleFps: number | null;
  /** Effective capture fps: min(options.fps, welcome.fps, throttle). */
  readonly fps: number;
  readonly encoderMode: EncoderMode | null;
  /** The part of the video the last frame shows (video pixels): maps result boxes onto the video. */
  readonly crop: { sx: number; sy: number; sw: number; sh: number; videoWidth: number; videoHeight: number };
  readonly stats: ClientStats;
  readonly stream: MediaStream | null;
  /** Asks for the camera, then connects. Rejects with a JipjungError (camera_*) and opens no connection when the camera cannot be used. */
  start(): Promise<void>;
  /** Sends bye, waits for the summary, closes and releases the camera. */
  stop(): Promise<Summary | null>;
  /** captureTs of a frame of the current session, when still remembered. */
  captureTsOf(seq: number): number | null;
  on<K extends keyof JipjungEventMap>(type: K, fn: (detail: JipjungEventMap[K]) => void): () => void;
  addEventListener<K extends keyof JipjungEventMap>(type: K, listener: (ev: CustomEvent<JipjungEventMap[K]>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof JipjungEventMap>(type: K, listener: (ev: CustomEvent<JipjungEventMap[K]>) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** The 16-byte frame header (big-endian) followed by the JPEG bytes. */
export declare function encodeFrame(seq: number, captureTs: number, jpeg: Uint8Array): Uint8Array;
/** Full-jitter backoff: uniform in [0, min(capMs, baseMs·2^attempt)). */
export declare function backoffDelay(attempt: number, backoff: { baseMs: number; capMs: number }, random?: () => number): number;
/** Whether a close with `code` is worth a reconnect. */
export declare function shouldReconnect(code: number, sessionEnded?: boolean): boolean;
export declare function defaultStreamUrl(loc?: { protocol: string; host: string }): string;
/** Centred crop of a vw×vh video with the aspect ratio of width×height. */
export declare function coverCrop(vw: number, vh: number, width: number, height: number): { sx: number; sy: number; sw: number; sh: number };
