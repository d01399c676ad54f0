// @ts-check
/**
 * jipjung browser client, protocol v1: opens the camera, streams JPEG
 * frames over a WebSocket and reports the live results as events.
 * One plain ES module, no build step; types in jipjung-client.d.ts and the
 * API in docs/client.md.
 *
 * Frames are never queued. A capture tick is skipped while the previous
 * frame is still being encoded or while the socket still holds about two
 * frames, so a slow network or a slow server lowers the frame rate
 * instead of adding latency.
 */

export const PROTOCOL_VERSION = 1;
export const STREAM_PATH = '/v1/stream';
export const FRAME_HEADER_BYTES = 16;
export const FRAME_VERSION = 1;
export const FORMAT_JPEG = 1;
export const CLIENT_VERSION = '0.1.0';

/**
 * The close codes of protocol v1 and whether the client reconnects after each: `retry` is 'no' (retrying
 * cannot help), 'yes', or 'unless_ended' (not once the server sent the summary). A copy of the server's
 * table, src/protocol/close-codes.ts (this file is served as it is and cannot import it);
 * test/protocol-close-codes.test.ts keeps the two equal. Codes not in it are retried.
 */
export const CLOSE_CODES = Object.freeze({
  normal: Object.freeze({ code: 1000, retry: 'unless_ended' }),
  going_away: Object.freeze({ code: 1001, retry: 'yes' }),
  abnormal: Object.freeze({ code: 1006, retry: 'yes' }),
  policy_violation: Object.freeze({ code: 1008, retry: 'no' }),
  message_too_big: Object.freeze({ code: 1009, retry: 'no' }),
  internal: Object.freeze({ code: 1011, retry: 'yes' }),
  restart: Object.freeze({ code: 1012, retry: 'yes', retryAfterInReason: true }),
  overloaded: Object.freeze({ code: 1013, retry: 'yes', minRetryDelayMs: 5000 }),
  unauthorized: Object.freeze({ code: 4401, retry: 'no' }),
  session_replaced: Object.freeze({ code: 4409, retry: 'no' }),
  too_many_sessions: Object.freeze({ code: 4429, retry: 'no' }),
});

/**
 * The name and rule of a close code, or null for a code the protocol does not name.
 * @param {number} code
 * @returns {{ name: string, code: number, retry: 'yes' | 'no' | 'unless_ended', minRetryDelayMs?: number, retryAfterInReason?: boolean } | null}
 */
export function closeRule(code) {
  for (const [name, rule] of Object.entries(CLOSE_CODES)) if (rule.code === code) return { name, ...rule };
  return null;
}

/** Close codes after which reconnecting cannot help. */
export const NO_RETRY_CLOSE_CODES = Object.freeze(
  Object.values(CLOSE_CODES)
    .filter((rule) => rule.retry === 'no')
    .map((rule) => rule.code),
);
/** A connection that stayed up this long resets the backoff. */
const STABLE_CONNECTION_MS = 5000;
/** Capture timestamps kept per session, to place results on a time axis. */
const CAPTURE_TS_MEMORY = 2048;
/** resultIds remembered to drop repeats. */
const RESULT_ID_MEMORY = 4096;
/** Estimated size of a frame before the first one is encoded, for the send-buffer check. */
const INITIAL_FRAME_BYTES = 48 * 1024;
/** The client closes its own socket with this code when no welcome arrives in time. */
const CLOSE_NO_WELCOME = 4000;

/**
 * The 16-byte protocol v1 frame header followed by the JPEG bytes.
 * @param {number} seq
 * @param {number} captureTs ms since the Unix epoch
 * @param {Uint8Array} jpeg
 * @returns {Uint8Array}
 */
export function encodeFrame(seq, captureTs, jpeg) {
  const out = new Uint8Array(FRAME_HEADER_BYTES + jpeg.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, FRAME_VERSION);
  view.setUint8(1, FORMAT_JPEG);
  view.setUint16(2, 0); // reserved
  view.setUint32(4, seq >>> 0); // DataView is big-endian unless told otherwise
  view.setFloat64(8, captureTs);
  out.set(jpeg, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Reconnect delay with "full jitter": uniform in [0, min(cap, base * 2^attempt)).
 * @param {number} attempt 0 for the first retry
 * @param {{ baseMs: number, capMs: number }} backoff
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, { baseMs, capMs }, random = Math.random) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * The `retryAfterMs` of a close reason such as `{"reason":"restart","retryAfterMs":1000}`, or 0.
 * @param {string} reason
 */
export function retryAfterOf(reason) {
  try {
    const v = JSON.parse(reason).retryAfterMs;
    return typeof v === 'number' && v >= 0 ? v : 0;
  } catch {
    return 0;
  }
}

/**
 * Whether a close with `code` is worth a reconnect (the client was not stopped).
 * @param {number} code
 * @param {boolean} sessionEnded a summary was received: the server ended the session
 */
export function shouldReconnect(code, sessionEnded = false) {
  const rule = closeRule(code);
  if (!rule) return true;
  return rule.retry === 'yes' || (rule.retry === 'unless_ended' && !sessionEnded);
}

/**
 * The stream endpoint on the page's own host: ws: for http pages, wss: for https.
 * @param {{ protocol: string, host: string }} [loc]
 */
export function defaultStreamUrl(loc = globalThis.location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}${STREAM_PATH}`;
}

/**
 * The centred crop of a `vw`×`vh` video that has the aspect ratio of
 * `width`×`height` ("cover"), so that faces are not stretched.
 * @param {number} vw
 * @param {number} vh
 * @param {number} width
 * @param {number} height
 * @returns {{ sx: number, sy: number, sw: number, sh: number }}
 */
export function coverCrop(vw, vh, width, height) {
  const target = width / height;
  if (vw / vh > target) {
    const sw = Math.round(vh * target);
    return { sx: Math.floor((vw - sw) / 2), sy: 0, sw, sh: vh };
  }
  const sh = Math.round(vw / target);
  return { sx: 0, sy: Math.floor((vh - sh) / 2), sw: vw, sh };
}

/** An error with a stable `code`, as carried by `error` events. */
export class JipjungError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ fatal?: boolean, cause?: unknown }} [opts]
   */
  constructor(code, message, opts = {}) {
    super(message, { cause: opts.cause });
    this.name = 'JipjungError';
    this.code = code;
    this.fatal = opts.fatal ?? true;
  }
}

/**
 * getUserMedia's DOMException names, as error codes the page can explain.
 * @param {unknown} err
 */
function cameraError(err) {
  const name = err && typeof err === 'object' && 'name' in err ? String(err.name) : '';
  const text = err instanceof Error ? err.message : String(err);
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return new JipjungError('camera_denied', `camera access was denied (${text})`, { cause: err });
    case 'NotFoundError':
    case 'OverconstrainedError':
      return new JipjungError('camera_not_found', `no usable camera was found (${text})`, { cause: err });
    case 'NotReadableError':
    case 'AbortError':
      return new JipjungError('camera_busy', `the camera could not be started; another application may be using it (${text})`, { cause: err });
    default:
      return new JipjungError('camera_error', `the camera could not be opened (${text})`, { cause: err });
  }
}

// Encoding: in a worker when the browser can (createImageBitmap + OffscreenCanvas
// in a worker), else OffscreenCanvas.convertToBlob, else canvas.toBlob.
const ENCODER_WORKER_SOURCE = `
let canvas = null, ctx = null;
self.onmessage = async (e) => {
  const { id, bitmap, width, height, quality } = e.data;
  try {
    if (!canvas || canvas.width !== width || canvas.height !== height) {
      canvas = new OffscreenCanvas(width, height);
      ctx = canvas.getContext('2d');
    }
    ctx.drawImage(bitmap, 0, 0, width, height);
    bitmap.close();
    const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality });
    const buf = await blob.arrayBuffer();
    self.postMessage({ id, buf }, [buf]);
  } catch (err) {
    self.postMessage({ id, error: String(err && err.message || err) });
  }
};`;

/** @typedef {'worker' | 'offscreen' | 'canvas'} EncoderMode */

/** Scales a crop of the video to width×height and encodes it as JPEG. One encode at a time. */
class FrameEncoder {
  /**
   * @param {{ width: number, height: number, quality: number, mode: EncoderMode | 'auto' }} opts
   */
  constructor({ width, height, quality, mode }) {
    this.width = width;
    this.height = height;
    this.quality = quality;
    /** @type {EncoderMode} */
    this.mode = mode === 'auto' ? pickEncoder() : mode;
    /** @type {Worker | null} */
    this.worker = null;
    this.nextId = 1;
    /** @type {Map<number, { resolve: (b: Uint8Array) => void, reject: (e: Error) => void }>} */
    this.pending = new Map();
    /** @type {any} */
    this.canvas = null;
    if (this.mode === 'worker') {
      try {
        this.startWorker();
      } catch {
        this.mode = typeof OffscreenCanvas === 'function' ? 'offscreen' : 'canvas'; // e.g. a CSP without worker-src blob:
      }
    }
  }

  startWorker() {
    const url = URL.createObjectURL(new Blob([ENCODER_WORKER_SOURCE], { type: 'text/javascript' }));
    const worker = new Worker(url);
    URL.revokeObjectURL(url);
    worker.onmessage = (e) => {
      const { id, buf, error } = e.data;
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      if (error) p.reject(new Error(error));
      else p.resolve(new Uint8Array(buf));
    };
    worker.onerror = (e) => {
      // The worker cannot run here: finish pending encodes with an error and encode on this thread from now on.
      e.preventDefault?.();
      this.failWorker(new Error(`encoder worker failed: ${e.message || 'error'}`));
    };
    this.worker = worker;
  }

  /** @param {Error} err */
  failWorker(err) {
    this.worker?.terminate();
    this.worker = null;
    this.mode = typeof OffscreenCanvas === 'function' ? 'offscreen' : 'canvas';
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /**
   * @param {HTMLVideoElement} video
   * @param {{ sx: number, sy: number, sw: number, sh: number }} crop
   * @returns {Promise<Uint8Array>}
   */
  async encode(video, crop) {
    const { width, height, quality } = this;
    const { sx, sy, sw, sh } = crop;
    if (this.mode === 'worker' && this.worker) {
      const bitmap = await createImageBitmap(video, sx, sy, sw, sh, { resizeWidth: width, resizeHeight: height, resizeQuality: 'medium' });
      if (!this.worker) {
        bitmap.close();
        return this.encode(video, crop);
      }
      const id = this.nextId++;
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.worker?.postMessage({ id, bitmap, width, height, quality }, [bitmap]);
      });
    }
    if (this.mode === 'offscreen') {
      if (!this.canvas) this.canvas = new OffscreenCanvas(width, height);
      this.canvas.getContext('2d').drawImage(video, sx, sy, sw, sh, 0, 0, width, height);
      const blob = await this.canvas.convertToBlob({ type: 'image/jpeg', quality });
      return new Uint8Array(await blob.arrayBuffer());
    }
    if (!this.canvas) {
      this.canvas = document.createElement('canvas');
      this.canvas.width = width;
      this.canvas.height = height;
    }
    this.canvas.getContext('2d').drawImage(video, sx, sy, sw, sh, 0, 0, width, height);
    const blob = await new Promise((resolve, reject) =>
      this.canvas.toBlob((/** @type {Blob | null} */ b) => (b ? resolve(b) : reject(new Error('canvas.toBlob gave no image'))), 'image/jpeg', quality),
    );
    return new Uint8Array(await blob.arrayBuffer());
  }

  close() {
    this.failWorker(new Error('encoder closed'));
  }
}

/**
 * Delete the first-inserted entry of a Set or Map.
 * @param {Set<number> | Map<number, unknown>} c
 */
function forgetOldest(c) {
  const first = c.keys().next();
  if (!first.done) c.delete(first.value);
}

/** @returns {EncoderMode} */
function pickEncoder() {
  if (typeof Worker === 'function' && typeof OffscreenCanvas === 'function' && typeof createImageBitmap === 'function') return 'worker';
  if (typeof OffscreenCanvas === 'function' && 'convertToBlob' in OffscreenCanvas.prototype) return 'offscreen';
  return 'canvas';
}

/**
 * @typedef {'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'} Status
 * @typedef {Record<string, any>} Message a server message as received
 * @typedef {object} JipjungClientOptions
 * @property {string} [url] stream endpoint; default: /v1/stream on the page's host
 * @property {number} [fps] at most this many frames a second (the server's fps is the upper bound)
 * @property {number} [width] frame width sent, px (640)
 * @property {number} [height] frame height sent, px (480)
 * @property {number} [quality] JPEG quality 0-1 (0.7)
 * @property {HTMLVideoElement} [video] element that shows the camera; a detached one is made otherwise
 * @property {string} [token] sent in hello
 * @property {Record<string, unknown>} [clientInfo] merged into hello.client
 * @property {'auto' | EncoderMode} [encoder]
 * @property {number} [retryBaseMs] backoff base (500)
 * @property {number} [retryCapMs] backoff cap (15000)
 * @property {number} [connectTimeoutMs] time for open + welcome before retrying (10000)
 * @property {number} [stopTimeoutMs] time stop() waits for the summary (10000)
 */

/**
 * The client. Events (CustomEvent, payload in `detail`): status, welcome,
 * session, result, state, error, throttle, notice, summary, frame.
 * `on(type, fn)` is a shorthand that passes `detail` and returns an unsubscribe function.
 */
export class JipjungClient extends EventTarget {
  /**
   * @param {JipjungClientOptions} [options]
   */
  constructor(options = {}) {
    super();
    const o = options;
    this.options = {
      url: o.url ?? defaultStreamUrl(),
      fps: o.fps,
      width: o.width ?? 640,
      height: o.height ?? 480,
      quality: o.quality ?? 0.7,
      video: o.video ?? null,
      token: o.token,
      clientInfo: o.clientInfo ?? {},
      encoder: o.encoder ?? 'auto',
      retryBaseMs: o.retryBaseMs ?? 500,
      retryCapMs: o.retryCapMs ?? 15_000,
      connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
      stopTimeoutMs: o.stopTimeoutMs ?? 10_000,
    };
    /** @type {Status} */
    this.status = 'idle';
    /** @type {Message | null} */
    this.welcome = null;
    /** @type {string | null} */
    this.sessionId = null;
    /** @type {Message | null} */
    this.summary = null;
    /** @type {string | null} state of the last batch result */
    this.state = null;
    /** @type {number | null} fps of the last throttle message, null when not throttled */
    this.throttleFps = null;
    /** The crop of the video that the last frame shows, in video pixels; maps result boxes onto the video. */
    this.crop = { sx: 0, sy: 0, sw: 0, sh: 0, videoWidth: 0, videoHeight: 0 };
    this.stats = { framesSent: 0, bytesSent: 0, sessionFramesSent: 0, skippedEncoding: 0, skippedBuffered: 0, reconnects: 0 };
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.seq = 0;
    this.resumeToken = /** @type {string | undefined} */ (undefined);
    this.started = false;
    this.stopping = false;
    this.attempt = 0;
    this.encoding = false;
    this.lastFrameBytes = INITIAL_FRAME_BYTES;
    this.lastCaptureTs = 0;
    /** @type {Set<number>} */
    this.seenResults = new Set();
    /** @type {Map<number, number>} */
    this.captureTimes = new Map();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.captureTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.welcomeTimer = undefined;
    this.openedAt = 0;
    this.nextCaptureAt = 0;
    this.lastTickAt = 0;
    /** @type {FrameEncoder | null} */
    this.encoder = null;
    /** @type {HTMLVideoElement | null} */
    this.video = null;
    /** @type {((m: Message | null) => void) | null} */
    this.summaryWaiter = null;
  }

  /**
   * Subscribe to an event; the handler gets the event's `detail`.
   * @param {string} type
   * @param {(detail: any) => void} fn
   * @returns {() => void} unsubscribe
   */
  on(type, fn) {
    /** @param {Event} e */
    const listener = (e) => fn(/** @type {CustomEvent} */ (e).detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /** The fps frames are captured at now: min(requested, welcome.fps, throttle). 0 while paused. */
  get fps() {
    const server = this.welcome?.fps ?? this.options.fps ?? 5;
    let fps = Math.min(this.options.fps ?? server, server);
    if (this.throttleFps !== null) fps = Math.min(fps, this.throttleFps);
    return Math.max(0, fps);
  }

  /** The encoder in use: 'worker', 'offscreen' or 'canvas' (null before start). */
  get encoderMode() {
    return this.encoder?.mode ?? null;
  }

  /**
   * The captureTs of a frame of the current session, when still remembered.
   * @param {number} seq
   */
  captureTsOf(seq) {
    return this.captureTimes.get(seq) ?? null;
  }

  /**
   * Ask for the camera (the browser's permission prompt), then connect.
   * Resolves once the camera runs; connection progress comes as events.
   * Rejects with a JipjungError (code camera_*) when the camera cannot be
   * opened; then no connection is made.
   */
  async start() {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    this.summary = null;
    this.sessionId = null; // a stopped session is over: never resume it
    this.resumeToken = undefined;
    this.attempt = 0;
    this.stats = { framesSent: 0, bytesSent: 0, sessionFramesSent: 0, skippedEncoding: 0, skippedBuffered: 0, reconnects: 0 };
    try {
      if (!globalThis.navigator?.mediaDevices?.getUserMedia) {
        throw new JipjungError('camera_unavailable', 'this page cannot use the camera (it needs https or localhost)');
      }
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({
          audio: false,
          video: {
            width: { ideal: this.options.width },
            height: { ideal: this.options.height },
            frameRate: { ideal: 15 },
            facingMode: 'user',
          },
        });
      } catch (err) {
        throw cameraError(err);
      }
      if (!this.started) {
        for (const t of stream.getTracks()) t.stop(); // stop() was called during the prompt
        return;
      }
      this.stream = stream;
      const video = this.options.video ?? document.createElement('video');
      video.muted = true;
      video.playsInline = true;
      video.srcObject = stream;
      this.video = video;
      await video.play().catch(() => {}); // autoplay of a muted stream is allowed; frames are checked before use anyway
      this.encoder = new FrameEncoder({ width: this.options.width, height: this.options.height, quality: this.options.quality, mode: this.options.encoder });
    } catch (err) {
      this.started = false;
      const e = err instanceof JipjungError ? err : cameraError(err);
      this.emit('error', { code: e.code, message: e.message, fatal: true, source: 'client' });
      this.setStatus('closed', { code: null, reason: e.code });
      this.releaseCamera();
      throw e;
    }
    this.connect();
  }

  /**
   * End the session: sends bye, waits for the remaining results and the
   * summary, closes, and releases the camera. Resolves with the summary
   * (null when no session was open, e.g. while reconnecting).
   * @returns {Promise<Message | null>}
   */
  async stop() {
    if (!this.started) return this.summary;
    this.stopping = true;
    this.stopCapture();
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    let summary = null;
    if (ws && ws.readyState === WebSocket.OPEN && this.welcome) {
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      const got = new Promise((resolve) => {
        this.summaryWaiter = resolve;
        timer = setTimeout(() => resolve(null), this.options.stopTimeoutMs);
      });
      ws.send(JSON.stringify({ type: 'bye' }));
      summary = await got;
      clearTimeout(timer);
      this.summaryWaiter = null;
    }
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(CLOSE_CODES.normal.code, 'stop');
    this.detach();
    this.started = false;
    this.releaseCamera();
    this.setStatus('closed', { code: CLOSE_CODES.normal.code, reason: 'stop' });
    return summary;
  }

  // -- connection --------------------------------------------------------

  connect() {
    if (!this.started || this.stopping) return;
    if (this.status !== 'reconnecting') this.setStatus('connecting', {});
    let ws;
    try {
      ws = new WebSocket(this.options.url);
    } catch (err) {
      // A malformed URL: retrying cannot help.
      this.emit('error', { code: 'bad_url', message: String(err instanceof Error ? err.message : err), fatal: true, source: 'client' });
      this.started = false;
      this.releaseCamera();
      this.setStatus('closed', { code: null, reason: 'bad_url' });
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    this.welcomeTimer = setTimeout(() => ws.close(CLOSE_NO_WELCOME, 'no welcome'), this.options.connectTimeoutMs);
    ws.onopen = () => {
      opened = true;
      /** @type {Record<string, unknown>} */
      const hello = {
        type: 'hello',
        client: { library: 'jipjung-client', version: CLIENT_VERSION, width: this.options.width, height: this.options.height, encoder: this.encoderMode, ...this.options.clientInfo },
      };
      if (this.options.token !== undefined) hello.token = this.options.token;
      if (this.sessionId) hello.sessionId = this.sessionId;
      if (this.sessionId && this.resumeToken) hello.resumeToken = this.resumeToken;
      // What this client has, so a resumed session resends only what it missed.
      if (this.sessionId && this.seenResults.size > 0) hello.lastResultId = Math.max(...this.seenResults);
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws || typeof e.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg && typeof msg === 'object') this.onMessage(msg);
    };
    ws.onclose = (e) => {
      if (ws !== this.ws) return;
      this.onClose(e.code, e.reason, opened);
    };
  }

  /** @param {Message} msg */
  onMessage(msg) {
    switch (msg.type) {
      case 'welcome':
        return this.onWelcome(msg);
      case 'result': {
        if (typeof msg.resultId === 'number') {
          if (this.seenResults.has(msg.resultId)) return; // a resent result after a resume
          this.seenResults.add(msg.resultId);
          // resultIds grow: the oldest (first inserted) can be forgotten.
          if (this.seenResults.size > RESULT_ID_MEMORY) forgetOldest(this.seenResults);
        }
        this.emit('result', msg);
        if (msg.kind === 'batch' && typeof msg.state === 'string' && msg.state !== this.state) {
          const previous = this.state;
          this.state = msg.state;
          this.emit('state', { state: msg.state, previous, score: msg.score ?? null, result: msg });
        }
        return;
      }
      case 'error':
        return this.emit('error', { ...msg, source: 'server' });
      case 'throttle':
        return this.onThrottle(msg);
      case 'align':
        return this.onAlign(msg);
      case 'notice':
        return this.emit('notice', msg);
      case 'summary':
        this.summary = msg;
        this.emit('summary', msg);
        this.summaryWaiter?.(msg);
        return;
      default:
      // Unknown message types are ignored: the server may add some.
    }
  }

  /** @param {Message} msg */
  onWelcome(msg) {
    clearTimeout(this.welcomeTimer);
    const previous = this.sessionId;
    const resumed = previous !== null && msg.sessionId === previous;
    this.welcome = msg;
    this.sessionId = msg.sessionId;
    this.resumeToken = typeof msg.resumeToken === 'string' ? msg.resumeToken : undefined;
    this.throttleFps = null; // a throttle belongs to the connection it came on
    this.openedAt = Date.now();
    // A resumed session goes on at this client's own seq counter (the server expects it to).
    if (!resumed) {
      this.seq = 0;
      this.seenResults.clear();
      this.captureTimes.clear();
      this.state = null;
      this.stats.sessionFramesSent = 0;
      this.summary = null;
    }
    this.setStatus('open', {});
    this.emit('welcome', msg);
    this.emit('session', { kind: resumed ? 'resumed' : 'new', sessionId: msg.sessionId, previousSessionId: previous });
    this.scheduleCapture(0);
  }

  /** @param {Message} msg */
  onThrottle(msg) {
    const fps = Number(msg.fps);
    if (!Number.isFinite(fps)) return;
    const max = this.welcome?.fps ?? Infinity;
    this.throttleFps = fps >= max ? null : Math.max(0, fps);
    this.emit('throttle', { ...msg, effectiveFps: this.fps });
    this.stopCapture();
    // The next frame keeps the new interval after the last one.
    if (this.fps > 0) this.scheduleCapture(Math.max(0, this.lastTickAt + 1000 / this.fps - Date.now()));
  }

  /**
   * The server asks for the next capture (and so every later one) `delayMs` later, so that this session's
   * units reach its workers apart from other sessions'. Once, at the same fps; never more than a unit's time.
   * @param {Message} msg
   */
  onAlign(msg) {
    const delayMs = Number(msg.delayMs);
    const unitMs = ((this.welcome?.batchFrames ?? 5) * 1000) / (this.welcome?.fps ?? 5);
    if (!Number.isFinite(delayMs) || delayMs <= 0 || delayMs >= unitMs) return;
    this.emit('align', { ...msg, delayMs });
    if (this.captureTimer === undefined) return;
    const at = this.nextCaptureAt + delayMs;
    this.stopCapture();
    this.scheduleCapture(Math.max(0, at - Date.now()));
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @param {boolean} opened the socket had opened (as opposed to a failed connect)
   */
  onClose(code, reason, opened) {
    const wasWelcomed = this.welcome !== null;
    const upMs = wasWelcomed ? Date.now() - this.openedAt : 0;
    this.detach();
    if (this.stopping || !this.started) {
      this.summaryWaiter?.(this.summary);
      return;
    }
    const rule = closeRule(code);
    if (!shouldReconnect(code, this.summary !== null)) {
      if (code !== CLOSE_CODES.normal.code) {
        // The close code's name, for the closes that have an error of their own (unauthorized, session_replaced, …).
        this.emit('error', { code: rule?.name ?? 'closed', message: `the server closed the connection (${code}${reason ? `: ${reason}` : ''})`, fatal: true, source: 'client', closeCode: code });
      }
      this.started = false;
      this.releaseCamera();
      this.setStatus('closed', { code, reason });
      return;
    }
    if (upMs >= STABLE_CONNECTION_MS) this.attempt = 0;
    let delayMs = backoffDelay(this.attempt, { baseMs: this.options.retryBaseMs, capMs: this.options.retryCapMs });
    // "Try again later" (`overloaded`) sets a least wait; a draining server (`restart`) suggests one in a JSON reason.
    if (rule?.minRetryDelayMs) delayMs = Math.max(delayMs, Math.min(rule.minRetryDelayMs, this.options.retryCapMs));
    if (rule?.retryAfterInReason) delayMs = Math.max(delayMs, Math.min(retryAfterOf(reason), this.options.retryCapMs));
    this.attempt++;
    this.stats.reconnects++;
    if (!opened) {
      this.emit('error', { code: 'unreachable', message: `the server could not be reached (${code})`, fatal: false, source: 'client', closeCode: code });
    } else if (code === CLOSE_CODES.overloaded.code) {
      this.emit('error', { code: 'overloaded', message: 'the server is overloaded; reconnecting later', fatal: false, source: 'client', closeCode: code });
    }
    this.setStatus('reconnecting', { code, reason, attempt: this.attempt, delayMs });
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }

  /** Forget the socket (its events are ignored from now on) and stop capturing. */
  detach() {
    clearTimeout(this.welcomeTimer);
    this.stopCapture();
    const ws = this.ws;
    this.ws = null;
    this.welcome = null;
    this.throttleFps = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      if (ws.readyState <= WebSocket.OPEN) ws.close(CLOSE_CODES.normal.code, 'closing');
    }
  }

  releaseCamera() {
    this.stopCapture();
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    if (this.video) {
      this.video.srcObject = null;
      this.video = null;
    }
    this.encoder?.close();
    this.encoder = null;
  }

  // -- capture -----------------------------------------------------------

  stopCapture() {
    clearTimeout(this.captureTimer);
    this.captureTimer = undefined;
  }

  /** @param {number} delayMs */
  scheduleCapture(delayMs) {
    if (this.captureTimer !== undefined || !this.welcome || this.fps <= 0) return;
    this.nextCaptureAt = Date.now() + delayMs;
    this.captureTimer = setTimeout(() => this.tick(), delayMs);
  }

  tick() {
    this.captureTimer = undefined;
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.welcome || this.stopping) return;
    const interval = 1000 / this.fps;
    // Keep the cadence; after a late tick (background tab, busy main thread), start over rather than catch up.
    const now = Date.now();
    this.nextCaptureAt = Math.max(this.nextCaptureAt + interval, now + interval / 2);
    this.captureTimer = setTimeout(() => this.tick(), this.nextCaptureAt - now);
    this.lastTickAt = now;
    if (this.encoding) {
      this.stats.skippedEncoding++;
      return;
    }
    if (ws.bufferedAmount > 2 * this.lastFrameBytes) {
      this.stats.skippedBuffered++;
      return;
    }
    const video = this.video;
    if (!video || !this.encoder || video.readyState < 2 || video.videoWidth === 0) return;
    this.captureFrame(ws, video, this.encoder);
  }

  /**
   * @param {WebSocket} ws
   * @param {HTMLVideoElement} video
   * @param {FrameEncoder} encoder
   */
  async captureFrame(ws, video, encoder) {
    this.encoding = true;
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    const crop = coverCrop(vw, vh, this.options.width, this.options.height);
    // Never backwards: the server refuses a captureTs that runs back while seq runs forward.
    const captureTs = Math.max(Date.now(), this.lastCaptureTs);
    let jpeg;
    try {
      jpeg = await encoder.encode(video, crop);
    } catch {
      return; // the frame is skipped; the next tick tries again (on the fallback encoder if the worker failed)
    } finally {
      this.encoding = false;
    }
    if (ws !== this.ws || ws.readyState !== WebSocket.OPEN || this.stopping || !this.welcome) return;
    const seq = this.seq++;
    const frame = encodeFrame(seq, captureTs, jpeg);
    ws.send(frame);
    this.lastCaptureTs = captureTs;
    this.lastFrameBytes = frame.length;
    this.crop = { ...crop, videoWidth: vw, videoHeight: vh };
    this.captureTimes.set(seq, captureTs);
    if (this.captureTimes.size > CAPTURE_TS_MEMORY) forgetOldest(this.captureTimes);
    this.stats.framesSent++;
    this.stats.sessionFramesSent++;
    this.stats.bytesSent += frame.length;
    this.emit('frame', { seq, captureTs, bytes: frame.length, sessionId: this.sessionId });
  }

  // -- events ------------------------------------------------------------

  /**
   * @param {Status} status
   * @param {Record<string, unknown>} info
   */
  setStatus(status, info) {
    const changed = status !== this.status;
    this.status = status;
    if (changed || status === 'reconnecting') this.emit('status', { status, ...info });
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
