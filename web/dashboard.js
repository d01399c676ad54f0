// @ts-check
/**
 * The operations dashboard: polls /dashboard/data every second (only the
 * samples it has not seen) and redraws uPlot charts of the last five
 * minutes. uPlot is loaded as a global by /dashboard/uplot.js.
 *
 * For tests and for poking at it from the console, the state is kept in
 * `window.dashboard` ({ instance, samples, charts, updates, errors }), and
 * <body data-ready> turns "true" once the charts have data.
 */

/** @typedef {Record<string, any>} Sample */

const POLL_MS = 1000;
/** Five minutes at one sample a second. */
const SHOWN = 300;
const PALETTE = ['#2f5bd3', '#1f9d55', '#d97706', '#dc2626', '#7c3aed', '#0891b2', '#be185d', '#65a30d', '#475569', '#ea580c'];
const MiB = 1024 * 1024;
/**
 * Where the METRICS_TOKEN a person pasted is kept: for this tab only, and
 * sent as a header, never in a URL (URLs end in proxy logs and history).
 */
const TOKEN_KEY = 'jipjung.metricsToken';
/** Polling pauses while the page waits for the token. */
let waitingForToken = false;

/** @type {any} */
const uPlot = /** @type {any} */ (window).uPlot;

const state = {
  /** @type {Record<string, any> | null} */
  instance: null,
  /** @type {Sample[]} */
  samples: [],
  /** @type {Record<string, any>} */
  charts: {},
  updates: 0,
  /** @type {string[]} */
  errors: [],
};
/** @type {any} */ (window).dashboard = state;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const fmt = (/** @type {number | null | undefined} */ v, digits = 1) =>
  v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toLocaleString('en', { maximumFractionDigits: digits });
/** The newest value of a series that is not null (what the legend shows while the cursor is off the chart). */
const latest = (/** @type {Array<number | null>} */ values) => {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
};

/**
 * @typedef {{ label: string, get: (s: Sample) => number | null, scale?: string, dash?: number[] }} SeriesSpec
 * @typedef {{ series: SeriesSpec[], unit?: string, percentAxis?: boolean }} ChartSpec
 */

/**
 * @param {number} workers
 * @param {string[]} dropReasons the server's drop reasons (`/dashboard/data`)
 * @returns {Record<string, ChartSpec>}
 */
function specs(workers, dropReasons) {
  const slots = [...Array(workers).keys()];
  return {
    sessions: {
      series: [
        { label: 'Connections', get: (s) => s.connections },
        { label: 'Sessions', get: (s) => s.sessions },
        { label: 'Detached', get: (s) => s.detachedSessions, dash: [4, 4] },
      ],
    },
    frames: {
      unit: '/s',
      series: [
        { label: 'Received', get: (s) => s.framesIn },
        { label: 'Analysed', get: (s) => s.analysed },
        { label: 'Rejected', get: (s) => s.rejected },
        { label: 'Dropped', get: (s) => s.dropped },
        { label: 'Results', get: (s) => s.results, dash: [4, 4] },
      ],
    },
    drops: {
      unit: '/s',
      series: [
        ...dropReasons.map((reason) => ({ label: reason, get: (/** @type {Sample} */ s) => s.droppedBy?.[reason] ?? 0 })),
        { label: 'rejected (any code)', get: (s) => s.rejected, dash: [4, 4] },
      ],
    },
    latency: {
      unit: ' ms',
      series: [
        { label: 'end to end p50', get: (s) => s.latencyMs.endToEnd.p50 },
        { label: 'end to end p95', get: (s) => s.latencyMs.endToEnd.p95 },
        { label: 'end to end p99', get: (s) => s.latencyMs.endToEnd.p99 },
        { label: 'queue wait p95', get: (s) => s.latencyMs.queue.p95, dash: [4, 4] },
        { label: 'IPC p95', get: (s) => s.latencyMs.ipc.p95, dash: [4, 4] },
        { label: 'model p95', get: (s) => s.latencyMs.model.p95, dash: [4, 4] },
      ],
    },
    cpu: {
      unit: '%',
      series: [
        { label: 'server', get: (s) => s.cpuPercent.server },
        ...slots.map((i) => ({ label: `worker ${i}`, get: (/** @type {Sample} */ s) => s.cpuPercent.workers[i] ?? null })),
      ],
    },
    memory: {
      unit: ' MiB',
      series: [
        { label: 'server', get: (s) => s.rssBytes.server / MiB },
        ...slots.map((i) => ({
          label: `worker ${i}`,
          get: (/** @type {Sample} */ s) => (s.rssBytes.workers[i] === null ? null : s.rssBytes.workers[i] / MiB),
        })),
      ],
    },
    loop: {
      unit: ' ms',
      series: [
        { label: 'p99', get: (s) => s.loopLagMs.p99 },
        { label: 'max', get: (s) => s.loopLagMs.max },
      ],
    },
    queue: {
      percentAxis: true,
      series: [
        { label: 'queued units', get: (s) => s.queuedUnits },
        { label: 'budget used %', get: (s) => (100 * s.budgetUsedBytes) / s.budgetLimitBytes, scale: '%' },
      ],
    },
  };
}

/** @param {string} name @param {ChartSpec} spec */
function makeChart(name, spec) {
  const el = /** @type {HTMLElement} */ (document.querySelector(`[data-chart="${name}"] .plot`));
  const unit = spec.unit ?? '';
  const fromZero = (/** @type {any} */ _u, /** @type {number} */ _min, /** @type {number} */ max) => [0, max > 0 ? max * 1.1 : 1];
  /** @type {Record<string, any>} */
  const scales = { x: { time: true }, y: { range: fromZero } };
  /** @type {Array<Record<string, any>>} */
  const axes = [{}, { size: 56, values: (/** @type {any} */ _u, /** @type {number[]} */ ticks) => ticks.map((t) => fmt(t, 2)) }];
  if (spec.percentAxis) {
    scales['%'] = { range: [0, 100] };
    axes.push({ scale: '%', side: 1, size: 46, grid: { show: false }, values: (/** @type {any} */ _u, /** @type {number[]} */ ticks) => ticks.map((t) => `${t}%`) });
  }
  const chart = new uPlot(
    {
      width: Math.max(300, el.clientWidth),
      height: 230,
      scales,
      axes,
      cursor: { drag: { x: false, y: false } },
      series: [
        {
          label: 'Time',
          value: (/** @type {any} */ u, /** @type {number | null} */ t, /** @type {number} */ _s, /** @type {number | null} */ idx) => {
            const at = idx === null ? latest(u.data[0]) : t;
            return at ? new Date(at * 1000).toLocaleTimeString() : '–';
          },
        },
        ...spec.series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          dash: s.dash,
          scale: s.scale ?? 'y',
          value: (/** @type {any} */ u, /** @type {number | null} */ v, /** @type {number} */ si, /** @type {number | null} */ idx) => {
            const shown = idx === null ? latest(u.data[si]) : v;
            return shown === null ? '–' : `${fmt(shown)}${s.scale === '%' ? '%' : unit}`;
          },
        })),
      ],
    },
    [[], ...spec.series.map(() => [])],
    el,
  );
  new ResizeObserver(() => chart.setSize({ width: Math.max(300, el.clientWidth), height: 230 })).observe(el);
  return chart;
}

function draw() {
  const shown = state.samples.slice(-SHOWN);
  const xs = shown.map((s) => s.t / 1000);
  for (const [name, chart] of Object.entries(state.charts)) {
    const spec = /** @type {ChartSpec} */ (chart.spec);
    chart.setData([xs, ...spec.series.map((series) => shown.map((s) => series.get(s)))]);
    chart.setLegend(); // the newest values, unless the cursor points at others
  }
  const last = shown[shown.length - 1];
  if (!last) return;
  $('t-sessions').textContent = `${last.sessions}`;
  $('t-framesIn').textContent = fmt(last.framesIn);
  $('t-analysed').textContent = fmt(last.analysed);
  $('t-dropped').textContent = fmt(last.dropped + last.rejected);
  const p95 = last.latencyMs.endToEnd.p95;
  $('t-latency').innerHTML = p95 === null ? '–' : `${fmt(p95, 0)}<small> ms</small>`;
  $('t-workers').textContent = `${last.workersReady} / ${last.workersBusy}`;
  $('t-restarts').textContent = `${last.restarts}`;
  $('t-queue').innerHTML = `${last.queuedUnits}<small> · ${fmt((100 * last.budgetUsedBytes) / last.budgetLimitBytes)}%</small>`;
  $('t-lag').innerHTML = `${fmt(last.loopLagMs.p99)}<small> ms</small>`;
  const readiness = $('readiness');
  readiness.dataset.state = last.ready ? 'ready' : 'not_ready';
  readiness.textContent = last.ready ? 'ready' : 'not ready';
  $('updated').textContent = `updated ${new Date(last.t).toLocaleTimeString()}`;
}

/** An instance with METRICS_TOKEN answers 401 without it: ask for it, and poll again once given. */
function askForToken() {
  const form = /** @type {HTMLFormElement} */ ($('token-form'));
  waitingForToken = true;
  const readiness = $('readiness');
  readiness.dataset.state = '';
  readiness.textContent = 'token required';
  if (!form.hidden) return;
  form.hidden = false;
  $('token').focus();
  form.addEventListener(
    'submit',
    (e) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, /** @type {HTMLInputElement} */ ($('token')).value.trim());
      form.hidden = true;
      waitingForToken = false;
      void poll();
    },
    { once: true },
  );
}

async function poll() {
  const since = state.samples.length > 0 ? state.samples[state.samples.length - 1].t : 0;
  const token = sessionStorage.getItem(TOKEN_KEY);
  try {
    const res = await fetch(`/dashboard/data?since=${since}`, { cache: 'no-store', headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (res.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken();
      return;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const data = await res.json();
    if (!state.instance || state.instance.pid !== data.instance.pid || state.instance.startedAt !== data.instance.startedAt) {
      // First contact, or the instance restarted: start over.
      state.instance = data.instance;
      state.samples = [];
      for (const el of document.querySelectorAll('.plot')) el.replaceChildren();
      state.charts = {};
      for (const [name, spec] of Object.entries(specs(data.instance.workers, data.dropReasons))) {
        state.charts[name] = makeChart(name, spec);
        state.charts[name].spec = spec;
      }
      const i = data.instance;
      $('instance').textContent = `${i.hostname} · pid ${i.pid} · ${i.workers} workers · up since ${new Date(i.startedAt).toLocaleTimeString()}`;
    }
    state.samples.push(...data.samples);
    if (state.samples.length > SHOWN) state.samples.splice(0, state.samples.length - SHOWN);
    draw();
    state.updates++;
    if (state.samples.length > 0) document.body.dataset.ready = 'true';
  } catch (err) {
    state.errors.push(String(err));
    const readiness = $('readiness');
    readiness.dataset.state = 'unreachable';
    readiness.textContent = 'unreachable';
  } finally {
    if (!waitingForToken) setTimeout(poll, POLL_MS);
  }
}

void poll();
