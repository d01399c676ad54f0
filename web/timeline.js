// @ts-check
/**
 * The demo page's timeline: a session's scores on a canvas, drawn by hand.
 * Batch results are a thin line (broken where a batch had no score or the
 * connection was down), window results are bars spanning their frames,
 * a strip along the bottom shows each batch's state, shaded bands show
 * disconnections and dashed lines mark where a new session began.
 */

export const STATE_COLORS = {
  focused: '#1f9d55',
  distracted: '#d97706',
  drowsy: '#7c3aed',
  absent: '#dc2626',
  unknown: '#8792a2',
};
const LINE_COLOR = '#2f5bd3';
const GRID_COLOR = '#e3e6ec';
const TEXT_COLOR = '#667085';
/** The axis always spans at least this much, so the first seconds do not fill the width. */
const MIN_SPAN_MS = 60_000;
/** Older results scroll out past this span. */
const MAX_SPAN_MS = 10 * 60_000;
/** Two batches further apart than this are not joined by the line. */
const LINE_GAP_MS = 3000;
const TICK_STEPS_S = [5, 10, 15, 30, 60, 120, 300, 600];

/**
 * @typedef {{ t: number, score: number | null, state: string, sessionId: string | null }} BatchPoint
 * @typedef {{ t0: number, t1: number, score: number | null, state: string }} WindowBar
 */

/**
 * Size a canvas's backing store to its CSS size at the screen's pixel ratio
 * and clear it; drawing then uses CSS pixels. Null without a 2D context.
 * @param {HTMLCanvasElement} canvas
 */
export function fitCanvas(canvas) {
  const dpr = globalThis.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext('2d');
  if (!ctx) return null;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return { ctx, width, height };
}

export class Timeline {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    /** @type {BatchPoint[]} */
    this.batches = [];
    /** @type {WindowBar[]} */
    this.windows = [];
    /** @type {Array<{ t: number, label: string }>} */
    this.marks = [];
    /** @type {Array<{ from: number, to: number | null }>} */
    this.outages = [];
    /** @type {number | null} */
    this.startedAt = null;
    /** @type {number | null} */
    this.endedAt = null;
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /** @param {number} now */
  reset(now) {
    this.batches = [];
    this.windows = [];
    this.marks = [];
    this.outages = [];
    this.startedAt = now;
    this.endedAt = null;
    this.draw();
  }

  /** @param {number} now */
  end(now) {
    this.endedAt = now;
    this.outageEnd(now);
    this.draw();
  }

  /** @param {BatchPoint} p */
  addBatch(p) {
    this.batches.push(p);
  }

  /** @param {WindowBar} w */
  addWindow(w) {
    this.windows.push(w);
  }

  /** @param {number} t @param {string} label */
  addMark(t, label) {
    this.marks.push({ t, label });
  }

  /** @param {number} t */
  outageStart(t) {
    const last = this.outages[this.outages.length - 1];
    if (!last || last.to !== null) this.outages.push({ from: t, to: null });
  }

  /** @param {number} t */
  outageEnd(t) {
    const last = this.outages[this.outages.length - 1];
    if (last && last.to === null) last.to = t;
  }

  draw(now = Date.now()) {
    const fit = fitCanvas(this.canvas);
    if (!fit || fit.width === 0 || fit.height === 0) return;
    const { ctx, width: cssW, height: cssH } = fit;
    ctx.font = '11px system-ui, sans-serif';

    const left = 30;
    const right = 8;
    const top = 6;
    const strip = 5;
    const bottom = 16 + strip + 2;
    const plotW = cssW - left - right;
    const plotH = cssH - top - bottom;
    if (plotW <= 10 || plotH <= 10) return;

    const start = this.startedAt ?? now;
    const end = this.endedAt ?? now;
    const t1 = Math.max(end, start + MIN_SPAN_MS);
    const t0 = Math.max(start, t1 - MAX_SPAN_MS);
    const x = (/** @type {number} */ t) => left + ((t - t0) / (t1 - t0)) * plotW;
    const y = (/** @type {number} */ score) => top + (1 - score / 100) * plotH;

    // Grid and y labels.
    ctx.strokeStyle = GRID_COLOR;
    ctx.fillStyle = TEXT_COLOR;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const s of [0, 50, 100]) {
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y(s)) + 0.5);
      ctx.lineTo(left + plotW, Math.round(y(s)) + 0.5);
      ctx.stroke();
      ctx.fillText(String(s), left - 5, y(s));
    }
    // x labels: time since the start, mm:ss.
    const spanS = (t1 - t0) / 1000;
    const step = TICK_STEPS_S.find((s) => spanS / s <= 8) ?? 600;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const firstTick = Math.ceil((t0 - start) / 1000 / step) * step;
    for (let s = firstTick; start + s * 1000 <= t1; s += step) {
      const px = x(start + s * 1000);
      ctx.textAlign = px > left + plotW - 15 ? 'right' : 'center';
      ctx.fillText(`${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`, px, top + plotH + strip + 4);
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(left, 0, plotW, cssH);
    ctx.clip();

    // Disconnections.
    ctx.fillStyle = 'rgba(220, 38, 38, 0.08)';
    for (const o of this.outages) {
      const a = x(o.from);
      const b = x(o.to ?? end);
      ctx.fillRect(a, top, Math.max(1, b - a), plotH);
    }

    // Window bars.
    for (const w of this.windows) {
      if (w.score === null) continue;
      const color = STATE_COLORS[/** @type {keyof typeof STATE_COLORS} */ (w.state)] ?? STATE_COLORS.unknown;
      const a = x(w.t0);
      const b = Math.max(a + 2, x(w.t1));
      ctx.globalAlpha = 0.22;
      ctx.fillStyle = color;
      ctx.fillRect(a, y(w.score), b - a, y(0) - y(w.score));
      ctx.globalAlpha = 1;
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(a, y(w.score));
      ctx.lineTo(b, y(w.score));
      ctx.stroke();
    }

    // Batch line.
    ctx.strokeStyle = LINE_COLOR;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    /** @type {BatchPoint | null} */
    let prev = null;
    for (const p of this.batches) {
      if (p.score === null) {
        prev = null;
        continue;
      }
      const joined = prev !== null && prev.sessionId === p.sessionId && p.t - prev.t <= LINE_GAP_MS;
      if (joined) ctx.lineTo(x(p.t), y(p.score));
      else {
        ctx.moveTo(x(p.t), y(p.score));
        ctx.lineTo(x(p.t) + 0.5, y(p.score)); // a lone point stays visible
      }
      prev = p;
    }
    ctx.stroke();

    // State strip: each batch's state from the previous batch's time to its own.
    for (let i = 0; i < this.batches.length; i++) {
      const p = this.batches[i];
      const before = this.batches[i - 1];
      const from = before && p.t - before.t <= LINE_GAP_MS ? before.t : p.t - 1000;
      ctx.fillStyle = STATE_COLORS[/** @type {keyof typeof STATE_COLORS} */ (p.state)] ?? STATE_COLORS.unknown;
      ctx.fillRect(x(from), top + plotH + 1, Math.max(1, x(p.t) - x(from)), strip);
    }

    // New-session marks.
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = TEXT_COLOR;
    ctx.lineWidth = 1;
    ctx.fillStyle = TEXT_COLOR;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    for (const m of this.marks) {
      const px = Math.round(x(m.t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(px, top);
      ctx.lineTo(px, top + plotH);
      ctx.stroke();
      ctx.fillText(m.label, px + 3, top + 1);
    }
    ctx.restore();
  }
}
