/**
 * The bench's chart, hand-written SVG (pure: data in, text out): result
 * latency (p50, p95, p99; left axis, ms) and end-to-end throughput
 * (analysed frames/s; right axis) against the number of sessions N, with
 * the latency target and, when known, the raw model throughput as dashed
 * lines. Steps that did not hold are drawn hollow.
 */

export interface ChartPoint {
  sessions: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  analysedPerSecond: number;
  held: boolean;
}

export interface ChartOptions {
  title: string;
  targetMs?: number;
  rawFramesPerSecond?: number;
  width?: number;
  height?: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const n1 = (x: number) => (Math.round(x * 10) / 10).toString();

/** A round upper bound for an axis and its tick step. */
export function niceScale(max: number, ticks = 5): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.2 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return { max: Math.ceil(max / step) * step, step };
}

export function renderChart(points: ChartPoint[], o: ChartOptions): string {
  const W = o.width ?? 760;
  const H = o.height ?? 420;
  const m = { left: 64, right: 72, top: 44, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const pts = [...points].sort((a, b) => a.sessions - b.sessions);
  const maxN = Math.max(1, ...pts.map((p) => p.sessions));
  const x = (n: number) => m.left + (n / maxN) * pw;
  const latMax = niceScale(Math.max(o.targetMs ?? 0, ...pts.flatMap((p) => [p.p50 ?? 0, p.p95 ?? 0, p.p99 ?? 0])) * 1.05);
  const thrMax = niceScale(Math.max(o.rawFramesPerSecond ?? 0, ...pts.map((p) => p.analysedPerSecond)) * 1.05);
  const yl = (v: number) => m.top + ph - (Math.min(v, latMax.max) / latMax.max) * ph;
  const yr = (v: number) => m.top + ph - (Math.min(v, thrMax.max) / thrMax.max) * ph;
  const xs = niceScale(maxN, 6);

  const s: string[] = [];
  s.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  s.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  s.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`);
  // grid and axes
  for (let v = 0; v <= latMax.max + 1e-9; v += latMax.step) {
    s.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${n1(yl(v))}" y2="${n1(yl(v))}" stroke="#eee"/>`);
    s.push(`<text x="${m.left - 6}" y="${n1(yl(v) + 4)}" text-anchor="end" fill="#c0392b">${n1(v)}</text>`);
  }
  for (let v = 0; v <= thrMax.max + 1e-9; v += thrMax.step) {
    s.push(`<text x="${m.left + pw + 6}" y="${n1(yr(v) + 4)}" fill="#2471a3">${n1(v)}</text>`);
  }
  for (let v = 0; v <= maxN + 1e-9; v += xs.step) {
    s.push(`<line x1="${n1(x(v))}" x2="${n1(x(v))}" y1="${m.top + ph}" y2="${m.top + ph + 4}" stroke="#333"/>`);
    s.push(`<text x="${n1(x(v))}" y="${m.top + ph + 18}" text-anchor="middle">${n1(v)}</text>`);
  }
  s.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  s.push(`<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle">sessions (N), 5 fps each</text>`);
  s.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#c0392b">result latency, ms</text>`);
  s.push(`<text transform="translate(${W - 14} ${m.top + ph / 2}) rotate(90)" text-anchor="middle" fill="#2471a3">analysed frames/s</text>`);
  // reference lines
  if (o.targetMs !== undefined) {
    s.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${n1(yl(o.targetMs))}" y2="${n1(yl(o.targetMs))}" stroke="#c0392b" stroke-dasharray="6 4" stroke-width="1"/>`);
    s.push(`<text x="${m.left + pw - 4}" y="${n1(yl(o.targetMs) + 13)}" text-anchor="end" fill="#c0392b" font-size="11">target ${o.targetMs} ms</text>`);
  }
  if (o.rawFramesPerSecond !== undefined) {
    const yv = yr(o.rawFramesPerSecond);
    s.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${n1(yv)}" y2="${n1(yv)}" stroke="#2471a3" stroke-dasharray="2 3" stroke-width="1"/>`);
    s.push(`<text x="${m.left + pw - 4}" y="${n1(yv - 4)}" text-anchor="end" fill="#2471a3" font-size="11">raw model ${n1(o.rawFramesPerSecond)} frames/s</text>`);
  }
  // series
  const path = (sel: (p: ChartPoint) => number | null, y: (v: number) => number) =>
    pts
      .filter((p) => sel(p) !== null)
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${n1(x(p.sessions))},${n1(y(sel(p)!))}`)
      .join(' ');
  s.push(`<path d="${path((p) => p.p50, yl)}" fill="none" stroke="#e6b0aa" stroke-width="1.5"/>`);
  s.push(`<path d="${path((p) => p.p99, yl)}" fill="none" stroke="#922b21" stroke-width="1" stroke-dasharray="3 2"/>`);
  s.push(`<path d="${path((p) => p.p95, yl)}" fill="none" stroke="#c0392b" stroke-width="2"/>`);
  s.push(`<path d="${path((p) => p.analysedPerSecond, yr)}" fill="none" stroke="#2471a3" stroke-width="2"/>`);
  for (const p of pts) {
    const fill = (c: string) => (p.held ? c : '#fff');
    if (p.p95 !== null) s.push(`<circle cx="${n1(x(p.sessions))}" cy="${n1(yl(p.p95))}" r="4" fill="${fill('#c0392b')}" stroke="#c0392b" stroke-width="1.5"/>`);
    s.push(`<rect x="${n1(x(p.sessions) - 3.5)}" y="${n1(yr(p.analysedPerSecond) - 3.5)}" width="7" height="7" fill="${fill('#2471a3')}" stroke="#2471a3" stroke-width="1.5"/>`);
  }
  // legend
  const lx = m.left + 10;
  const ly = m.top + 10;
  const legend: Array<[string, string, string]> = [
    ['#c0392b', '', 'p95 latency'],
    ['#922b21', '3 2', 'p99'],
    ['#e6b0aa', '', 'p50'],
    ['#2471a3', '', 'analysed frames/s'],
  ];
  s.push(`<rect x="${lx - 4}" y="${ly - 4}" width="150" height="${legend.length * 16 + 22}" fill="#fff" fill-opacity="0.85" stroke="#ccc"/>`);
  legend.forEach(([c, dash, label], i) => {
    s.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly + 8 + i * 16}" y2="${ly + 8 + i * 16}" stroke="${c}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    s.push(`<text x="${lx + 28}" y="${ly + 12 + i * 16}">${label}</text>`);
  });
  s.push(`<text x="${lx}" y="${ly + 12 + legend.length * 16}" font-size="10" fill="#555">hollow marks: step did not hold</text>`);
  s.push('</svg>');
  return s.join('\n') + '\n';
}
