// @ts-check
/**
 * The demo page: consent, camera preview with the face box, the live score
 * and state, why the score is what it is (web/why.js), the timeline,
 * connection status, messages and the summary.
 * For tests it keeps what happened in `window.jipjung` and mirrors the
 * current status, state and score on <body data-*>.
 *
 * Query parameters (for tests and demos): fps, retryBaseMs, retryCapMs, url.
 */
import { CLOSE_CODES, JipjungClient } from './jipjung-client.js';
import { fitCanvas, STATE_COLORS, Timeline } from './timeline.js';
import { WhyPanel } from './why.js';

/** @typedef {[ko: string, en: string]} Label */

/** @type {Record<string, Label>} */
const STATES = {
  focused: ['집중', 'Focused'],
  distracted: ['산만', 'Distracted'],
  drowsy: ['졸음', 'Drowsy'],
  absent: ['자리 비움', 'Absent'],
  unknown: ['알 수 없음', 'Unknown'],
};

/** @type {Record<string, Label>} */
const STATUS = {
  idle: ['대기', 'Idle'],
  camera: ['카메라 권한 요청 중', 'Asking for the camera'],
  connecting: ['연결 중', 'Connecting'],
  open: ['연결됨', 'Connected'],
  reconnecting: ['재연결 중', 'Reconnecting'],
  closed: ['연결 종료', 'Disconnected'],
};

/** Readable messages by error or notice code; anything else shows the server's own message. */
/** @type {Record<string, { level: 'error' | 'warn' | 'info', text: Label }>} */
const MESSAGES = {
  camera_denied: { level: 'error', text: ['카메라 권한이 거부되었습니다. 주소창의 카메라 아이콘에서 허용한 뒤 다시 시작하세요.', 'Camera access was denied. Allow the camera (address bar icon) and start again.'] },
  camera_not_found: { level: 'error', text: ['카메라를 찾을 수 없습니다. 카메라가 연결되어 있는지 확인하세요.', 'No camera was found. Check that one is connected.'] },
  camera_busy: { level: 'error', text: ['카메라를 시작할 수 없습니다. 다른 프로그램이 사용 중일 수 있습니다.', 'The camera could not start; another application may be using it.'] },
  camera_unavailable: { level: 'error', text: ['이 페이지에서는 카메라를 쓸 수 없습니다 (HTTPS 또는 localhost 필요).', 'The camera cannot be used on this page (HTTPS or localhost is required).'] },
  camera_error: { level: 'error', text: ['카메라를 열 수 없습니다.', 'The camera could not be opened.'] },
  unreachable: { level: 'error', text: ['서버에 연결할 수 없습니다. 자동으로 다시 시도합니다.', 'The server is unreachable. Retrying automatically.'] },
  overloaded: { level: 'warn', text: ['서버가 혼잡합니다. 잠시 후 자동으로 다시 연결합니다.', 'The server is overloaded. Reconnecting in a moment.'] },
  unauthorized: { level: 'error', text: ['인증에 실패했습니다. 페이지를 새로 고치거나 관리자에게 문의하세요.', 'Not authorized. Reload the page or ask your administrator.'] },
  policy_violation: { level: 'error', text: ['서버가 연결을 거부했습니다.', 'The server refused the connection.'] },
  message_too_big: { level: 'error', text: ['프레임이 너무 커서 연결이 끊겼습니다.', 'A frame was too large; the connection was closed.'] },
  closed: { level: 'error', text: ['서버가 연결을 종료했습니다.', 'The server closed the connection.'] },
  model_error: { level: 'warn', text: ['일부 구간을 분석하지 못했습니다. 세션은 계속됩니다.', 'Some frames could not be analysed; the session goes on.'] },
  rate_limited: { level: 'warn', text: ['전송 속도가 제한되었습니다.', 'Sending is being rate-limited.'] },
  connection_lost: { level: 'warn', text: ['서버와의 연결이 끊겼습니다. 다시 연결합니다.', 'The connection to the server was lost. Reconnecting.'] },
  new_session: { level: 'info', text: ['새 세션으로 다시 연결되었습니다. 서버가 이전 세션을 이어가지 못했습니다.', 'Reconnected as a new session: the server could not resume the previous one.'] },
  resumed: { level: 'info', text: ['세션을 이어서 진행합니다.', 'Session resumed.'] },
  throttled: { level: 'warn', text: ['서버 요청으로 전송 속도를 낮췄습니다.', 'Sending slower at the server\'s request.'] },
  unthrottled: { level: 'info', text: ['전송 속도가 정상으로 돌아왔습니다.', 'Sending at the normal rate again.'] },
  no_summary: { level: 'warn', text: ['연결이 끊겨 있어 요약을 받지 못했습니다.', 'No summary: the connection was down.'] },
};
const MAX_MESSAGES = 5;
/** The face box fades out when the last batch is older than this. */
const BOX_STALE_MS = 3000;

const params = new URLSearchParams(location.search);
/** @param {string} name */
const numParam = (name) => (params.has(name) && Number.isFinite(Number(params.get(name))) ? Number(params.get(name)) : undefined);

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ui = {
  status: $('status'),
  video: /** @type {HTMLVideoElement} */ ($('preview')),
  overlay: /** @type {HTMLCanvasElement} */ ($('overlay')),
  consent: $('consent'),
  start: /** @type {HTMLButtonElement} */ ($('start')),
  stop: /** @type {HTMLButtonElement} */ ($('stop')),
  scoreCard: $('scoreCard'),
  score: $('score'),
  state: $('state'),
  windowScore: $('windowScore'),
  session: $('session'),
  model: $('model'),
  sent: $('sent'),
  resultCount: $('resultCount'),
  rate: $('rate'),
  messages: $('messages'),
  summary: /** @type {HTMLDialogElement} */ ($('summary')),
  summaryBody: $('summaryBody'),
};

/**
 * @param {HTMLElement} el
 * @param {Label} label
 */
function setLabel(el, label) {
  const [ko, en] = label;
  el.textContent = `${ko} `;
  const span = document.createElement('span');
  span.lang = 'en';
  span.textContent = en;
  el.append(span);
}

const client = new JipjungClient({
  video: ui.video,
  url: params.get('url') ?? undefined,
  fps: numParam('fps'),
  retryBaseMs: numParam('retryBaseMs'),
  retryCapMs: numParam('retryCapMs'),
  clientInfo: { page: 'demo' },
});
const timeline = new Timeline(/** @type {HTMLCanvasElement} */ ($('chart')));
const why = new WhyPanel(document);

/** What happened, for tests and for the curious (window.jipjung in the console). */
const jipjung = {
  client,
  /** @type {Array<Record<string, any>>} every result shown, with its sessionId */
  results: [],
  /** @type {Array<{ status: string, at: number, code?: number | null }>} */
  statusLog: [],
  /** @type {Array<Record<string, any>>} */
  errors: [],
  /** @type {Array<Record<string, any>>} */
  sessions: [],
  /** @type {Array<Record<string, any>>} */
  notices: [],
  /** @type {number[]} delays asked for by align messages, ms */
  aligns: [],
  /** @type {Array<{ code: string, text: string }>} messages shown */
  messages: [],
  /** @type {Record<string, any> | null} */
  summary: null,
};
Object.assign(window, { jipjung });

/** @type {{ box: number[], state: string, score: number | null, at: number } | null} */
let lastBox = null;
let running = false;
/** @type {ReturnType<typeof setInterval> | undefined} */
let ticker;

// -- messages -------------------------------------------------------------

/**
 * @param {string} code
 * @param {string} [fallback] server text for codes without a translation
 */
function showMessage(code, fallback) {
  const known = MESSAGES[code];
  const level = known?.level ?? 'warn';
  const text = known ? `${known.text[0]} ${known.text[1]}` : `${fallback ?? code} (${code})`;
  jipjung.messages.push({ code, text });
  const first = /** @type {HTMLElement | null} */ (ui.messages.firstElementChild);
  if (first && first.dataset.code === code) {
    const n = Number(first.dataset.count ?? '1') + 1;
    first.dataset.count = String(n);
    /** @type {HTMLElement} */ (first.querySelector('.count')).textContent = `×${n}`;
    return;
  }
  const li = document.createElement('li');
  li.dataset.code = code;
  li.dataset.level = level;
  const time = new Date().toLocaleTimeString();
  if (known) {
    li.textContent = `${time} · ${known.text[0]} `;
    const en = document.createElement('span');
    en.lang = 'en';
    en.textContent = known.text[1];
    li.append(en);
  } else {
    li.textContent = `${time} · ${text}`;
  }
  const count = document.createElement('span');
  count.className = 'count';
  li.append(count);
  ui.messages.prepend(li);
  while (ui.messages.children.length > MAX_MESSAGES) ui.messages.lastElementChild?.remove();
}

// -- status, score, state -------------------------------------------------

/** @param {string} status */
function showStatus(status) {
  ui.status.dataset.status = status;
  document.body.dataset.status = status;
  setLabel(ui.status, STATUS[status] ?? [status, status]);
}

/** @param {Record<string, any>} r */
function showBatch(r) {
  const state = STATES[r.state] ? r.state : 'unknown';
  ui.score.textContent = r.score === null || r.score === undefined ? '–' : String(Math.round(r.score));
  setLabel(ui.state, STATES[state]);
  ui.state.style.color = STATE_COLORS[/** @type {keyof typeof STATE_COLORS} */ (state)];
  ui.scoreCard.dataset.state = state;
  document.body.dataset.state = state;
  document.body.dataset.score = r.score === null || r.score === undefined ? '' : String(r.score);
  why.show(r);
  const frames = Array.isArray(r.frames) ? r.frames : [];
  const last = frames[frames.length - 1];
  lastBox = last && Array.isArray(last.box) ? { box: last.box, state: last.state ?? state, score: last.score ?? null, at: Date.now() } : null;
  drawOverlay();
}

/** @param {Record<string, any>} r */
function showWindow(r) {
  const state = STATES[r.state] ?? STATES.unknown;
  const from = client.captureTsOf(r.seqFrom);
  const to = client.captureTsOf(r.seqTo);
  const fps = client.welcome?.fps ?? 5;
  const secs = Math.max(1, Math.round(from !== null && to !== null ? (to - from) / 1000 + 1 / fps : (r.seqTo - r.seqFrom + 1) / fps));
  ui.windowScore.textContent = r.score === null ? '' : `최근 ${secs}초 평균 Last ${secs} s: ${Math.round(r.score)} · ${state[0]} ${state[1]}`;
}

function resetScore() {
  ui.score.textContent = '–';
  ui.state.textContent = '–';
  ui.state.style.color = '';
  ui.windowScore.textContent = '';
  ui.scoreCard.dataset.state = '';
  document.body.dataset.state = '';
  document.body.dataset.score = '';
  why.reset();
  lastBox = null;
  drawOverlay();
}

function showFacts() {
  ui.sent.textContent = String(client.stats.sessionFramesSent);
  ui.resultCount.textContent = String(jipjung.results.filter((r) => r.sessionId === client.sessionId).length);
  const fps = client.welcome ? client.fps : null;
  ui.rate.textContent = fps === null ? '–' : client.throttleFps !== null ? `${fps} fps (제한 throttled)` : `${fps} fps`;
}

// -- face box overlay -----------------------------------------------------

function drawOverlay() {
  const canvas = ui.overlay;
  const fit = fitCanvas(canvas);
  if (!fit) return;
  const { ctx, width: W, height: H } = fit;
  const crop = client.crop;
  if (!lastBox || !running || client.status !== 'open' || Date.now() - lastBox.at > BOX_STALE_MS || crop.videoWidth === 0) {
    delete canvas.dataset.box;
    delete canvas.dataset.drawn;
    return;
  }
  // Frame-normalised box -> video pixels (through the crop the frame shows) -> element pixels (object-fit: contain), mirrored like the video.
  const [bx, by, bw, bh] = lastBox.box;
  const s = Math.min(W / crop.videoWidth, H / crop.videoHeight);
  const ox = (W - crop.videoWidth * s) / 2;
  const oy = (H - crop.videoHeight * s) / 2;
  const w = bw * crop.sw * s;
  const h = bh * crop.sh * s;
  const x = W - (ox + (crop.sx + bx * crop.sw) * s) - w;
  const y = oy + (crop.sy + by * crop.sh) * s;
  const color = STATE_COLORS[/** @type {keyof typeof STATE_COLORS} */ (lastBox.state)] ?? STATE_COLORS.unknown;
  ctx.strokeStyle = color;
  ctx.lineWidth = 3;
  ctx.strokeRect(x, y, w, h);
  const label = `${(STATES[lastBox.state] ?? STATES.unknown).join(' ')}${lastBox.score === null ? '' : ` ${Math.round(lastBox.score)}`}`;
  ctx.font = '600 14px system-ui, sans-serif';
  const tw = ctx.measureText(label).width + 10;
  ctx.fillStyle = color;
  ctx.fillRect(x, Math.max(0, y - 22), tw, 20);
  ctx.fillStyle = '#fff';
  ctx.textBaseline = 'middle';
  ctx.fillText(label, x + 5, Math.max(0, y - 22) + 10);
  canvas.dataset.box = JSON.stringify(lastBox.box);
  canvas.dataset.drawn = [x, y, w, h].map((v) => Math.round(v)).join(',');
}

// -- summary --------------------------------------------------------------

/** @param {Record<string, any>} s */
function showSummary(s) {
  const body = ui.summaryBody;
  body.replaceChildren();
  const score = document.createElement('div');
  score.className = 'sum-score';
  score.textContent = s.meanScore === null || s.meanScore === undefined ? '–' : String(s.meanScore);
  const caption = document.createElement('div');
  caption.className = 'caption';
  caption.innerHTML = '평균 집중도 <span lang="en">Mean score</span>';
  const grid = document.createElement('dl');
  grid.className = 'sum-grid';
  /** @type {Array<[string, string]>} */
  const rows = [
    ['시간 Duration', s.durationMs ? `${Math.round(s.durationMs / 1000)} s` : '–'],
    ['받은 프레임 Frames received', String(s.framesReceived ?? '–')],
    ['분석된 프레임 Frames analysed', String(s.framesAnalyzed ?? '–')],
    ['거부 Rejected', String(s.framesRejected ?? 0)],
    ['누락 Dropped', String(s.framesDropped ?? 0)],
  ];
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    grid.append(dt, dd);
  }
  const seconds = /** @type {Record<string, number>} */ (s.stateSeconds ?? {});
  const total = Object.values(seconds).reduce((a, b) => a + b, 0);
  const bar = document.createElement('div');
  bar.className = 'sum-bar';
  const legend = document.createElement('div');
  legend.className = 'sum-states';
  for (const [state, secs] of Object.entries(seconds)) {
    if (!(secs > 0)) continue;
    const color = STATE_COLORS[/** @type {keyof typeof STATE_COLORS} */ (state)] ?? STATE_COLORS.unknown;
    const seg = document.createElement('span');
    seg.style.width = `${(secs / total) * 100}%`;
    seg.style.background = color;
    bar.append(seg);
    const item = document.createElement('span');
    item.dataset.state = state;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = color;
    item.append(sw, `${(STATES[state] ?? [state, state]).join(' ')} ${secs} s`);
    legend.append(item);
  }
  body.append(caption, score, grid, bar, legend);
  body.dataset.framesReceived = String(s.framesReceived);
  if (!ui.summary.open) ui.summary.showModal();
}

// -- client events --------------------------------------------------------

client.on('status', (d) => {
  const previous = jipjung.statusLog[jipjung.statusLog.length - 1]?.status;
  jipjung.statusLog.push({ status: d.status, at: Date.now(), code: d.code });
  showStatus(d.status);
  if (d.status === 'reconnecting') {
    timeline.outageStart(Date.now());
    if (previous === 'open' && d.code !== CLOSE_CODES.overloaded.code) showMessage('connection_lost');
  }
  if (d.status === 'open') timeline.outageEnd(Date.now());
  if (d.status === 'closed' && running) finish();
  showFacts();
});

client.on('welcome', (w) => {
  ui.model.textContent = w.model ? `${w.model.name} ${w.model.version}` : '–';
  ui.session.textContent = String(w.sessionId).slice(0, 8);
  ui.session.title = w.sessionId;
  showFacts();
});

client.on('session', (d) => {
  jipjung.sessions.push({ ...d, at: Date.now() });
  document.body.dataset.sessionKind = d.kind;
  if (d.previousSessionId === null) return;
  if (d.kind === 'new') {
    showMessage('new_session');
    timeline.addMark(Date.now(), '새 세션 New session');
    resetScore();
  } else {
    showMessage('resumed');
  }
});

client.on('result', (r) => {
  const entry = { ...r, sessionId: client.sessionId, receivedAt: Date.now() };
  jipjung.results.push(entry);
  const captured = (/** @type {number} */ seq) => client.captureTsOf(seq) ?? Date.now();
  if (r.kind === 'batch') {
    timeline.addBatch({ t: captured(r.seqTo), score: r.score, state: r.state, sessionId: client.sessionId });
    showBatch(r);
  } else {
    timeline.addWindow({ t0: captured(r.seqFrom), t1: captured(r.seqTo), score: r.score, state: r.state });
    showWindow(r);
  }
  timeline.draw();
  showFacts();
});

client.on('error', (e) => {
  jipjung.errors.push({ ...e, at: Date.now() });
  showMessage(e.code, e.message);
});

client.on('notice', (n) => {
  jipjung.notices.push(n);
  showMessage(n.code, n.message);
});

client.on('throttle', (t) => {
  showMessage(client.throttleFps === null ? 'unthrottled' : 'throttled');
  showFacts();
});

client.on('align', (a) => {
  jipjung.aligns.push(a.delayMs);
});

client.on('frame', () => {
  ui.sent.textContent = String(client.stats.sessionFramesSent);
});

// -- start / stop ---------------------------------------------------------

async function start() {
  if (running) return;
  ui.start.disabled = true;
  ui.summary.close();
  jipjung.summary = null;
  showStatus('camera');
  resetScore();
  try {
    await client.start();
  } catch {
    // The error event has put the message up; the consent panel stays for another try.
    ui.start.disabled = false;
    showStatus('idle');
    return;
  }
  running = true;
  document.body.dataset.running = 'true';
  ui.consent.hidden = true;
  ui.stop.disabled = false;
  timeline.reset(Date.now());
  ticker = setInterval(() => {
    timeline.draw();
    drawOverlay();
  }, 500);
}

async function stop() {
  if (!running) return;
  ui.stop.disabled = true;
  const summary = await client.stop();
  jipjung.summary = summary;
  finish();
  if (summary) showSummary(summary);
  else showMessage('no_summary');
}

/** Back to the consent panel, after stop() or a connection that cannot be retried. */
function finish() {
  running = false;
  document.body.dataset.running = 'false';
  clearInterval(ticker);
  timeline.end(Date.now());
  ui.consent.hidden = false;
  setLabel(ui.start, ['다시 시작', 'Start again']);
  ui.start.disabled = false;
  ui.stop.disabled = true;
  drawOverlay();
}

ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', stop);
new ResizeObserver(() => drawOverlay()).observe(ui.overlay);
showStatus('idle');
document.body.dataset.ready = 'true';
