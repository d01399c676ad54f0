/**
 * GET /metrics of a real instance: the counters move by exactly what a
 * scripted session did, every histogram sees it, a killed worker shows as
 * a restart, /readyz follows the frame budget, and the Grafana dashboard
 * asks only for series the instance exports.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FORMAT_JPEG } from '../src/handler/frame-header.js';
import { readiness } from '../src/server/health.js';
import { parseExposition, type Exposition } from '../src/utils/prometheus.js';
import { frame, startTestApp, TEST_DIR, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const face = frame('face.jpg');

let t: TestApp;
const scrape = async (): Promise<Exposition> => {
  const res = await fetch(`${t.ops}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
};
const value = (e: Exposition, series: string) => e.samples.get(series) ?? 0;
const moved = (before: Exposition, after: Exposition, series: string) => value(after, series) - value(before, series);

beforeAll(async () => {
  t = await startTestApp({ ...BRIGHTNESS_MODEL });
});
afterAll(async () => {
  await t?.close();
});

describe('GET /metrics', () => {
  it('follows the naming rules: one prefix, base units, _total on counters, no per-user labels, and the defaults', async () => {
    const e = await scrape();
    const families = [...e.types.keys()];
    const ours = families.filter((f) => f.startsWith('jipjung_'));
    expect(ours.length).toBeGreaterThanOrEqual(25);
    // prom-client's defaults keep their standard names.
    expect(families.filter((f) => !f.startsWith('jipjung_')).every((f) => /^(process|nodejs)_/.test(f))).toBe(true);
    for (const f of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) expect(e.types.has(f)).toBe(true);
    for (const f of ours) {
      expect(e.help.get(f), f).toBeTruthy();
      const type = e.types.get(f);
      if (type === 'counter') expect(f, f).toMatch(/_total$/);
      else expect(f, f).not.toMatch(/_total$/);
      if (type === 'histogram') expect(f, f).toMatch(/_seconds$/);
      expect(f, f).not.toMatch(/_(ms|milliseconds|kb|mb|percent)(_|$)/);
    }
    const labels = new Set<string>();
    for (const series of e.samples.keys()) {
      if (!series.startsWith('jipjung_')) continue;
      for (const m of series.matchAll(/[{,](\w+)="/g)) labels.add(m[1]);
    }
    expect([...labels].sort()).toEqual(['cause', 'code', 'kind', 'le', 'reason', 'slot', 'state']);
    expect(value(e, 'jipjung_workers')).toBe(2);
    expect(value(e, 'jipjung_frame_budget_limit_bytes')).toBe(t.app.budget.limitBytes);
    for (const slot of ['0', '1']) {
      expect(value(e, `jipjung_worker_resident_memory_bytes{slot="${slot}"}`)).toBeGreaterThan(1024 * 1024);
      expect(e.samples.has(`jipjung_worker_cpu_seconds_total{slot="${slot}"}`)).toBe(true);
    }
  });

  it('counters move by exactly what a scripted session did, and every histogram sees it', async () => {
    const before = await scrape();
    const c = await TestClient.connect(t.url);
    let bytes = 0;
    // One captureTs for all, the repeated frame's too: it is a duplicate whatever its stamp.
    const captureTs = Date.now();
    for (let seq = 0; seq < 10; seq++) {
      const msg = encodeFrame({ format: FORMAT_JPEG, seq, captureTs }, face);
      bytes += msg.length;
      c.sendRaw(msg);
    }
    const broken = Buffer.from([1, 1, 0, 0]); // shorter than the header: frame_invalid
    c.sendRaw(broken);
    const duplicate = encodeFrame({ format: FORMAT_JPEG, seq: 3, captureTs }, face);
    c.sendRaw(duplicate);
    bytes += broken.length + duplicate.length;
    await c.until(() => c.results('batch').length === 2);
    const summary = await c.bye();
    await c.waitForClose();
    await c.until(() => t.logs.some((l) => l.event === 'session_close' && l.sessionId === summary.sessionId));
    const after = await scrape();

    expect(summary).toMatchObject({ framesReceived: 12, framesAnalyzed: 10, rejected: { frame_invalid: 1 }, dropped: { duplicate: 1 } });
    const units = t.logs.filter((l) => l.event === 'unit_done' && l.sessionId === summary.sessionId).length;
    expect(units).toBeGreaterThanOrEqual(2);
    const exact: Record<string, number> = {
      jipjung_connections_total: 1,
      jipjung_frames_received_total: 12,
      jipjung_frames_received_bytes_total: bytes,
      jipjung_frames_analysed_total: 10,
      'jipjung_frames_rejected_total{code="frame_invalid"}': 1,
      'jipjung_frames_rejected_total{code="jpeg_invalid"}': 0,
      'jipjung_frames_dropped_total{reason="duplicate"}': 1,
      'jipjung_frames_dropped_total{reason="shed"}': 0,
      'jipjung_results_total{kind="batch"}': 2,
      'jipjung_results_total{kind="window"}': 1,
      jipjung_units_total: units,
      jipjung_queue_wait_seconds_count: units,
      jipjung_ipc_round_trip_seconds_count: units,
      jipjung_model_seconds_count: units,
      // One observation per frame carried to a worker.
      jipjung_end_to_end_seconds_count: 10,
    };
    for (const [series, n] of Object.entries(exact)) expect(moved(before, after, series), series).toBe(n);
    expect(c.results()).toHaveLength(3);
    for (const h of ['queue_wait', 'ipc_round_trip', 'model', 'end_to_end']) {
      expect(moved(before, after, `jipjung_${h}_seconds_sum`), h).toBeGreaterThan(0);
      expect(moved(before, after, `jipjung_${h}_seconds_bucket{le="+Inf"}`), h).toBe(moved(before, after, `jipjung_${h}_seconds_count`));
    }
    // The model time is measured in Python and is part of the IPC round trip.
    expect(value(after, 'jipjung_model_seconds_sum')).toBeLessThanOrEqual(value(after, 'jipjung_ipc_round_trip_seconds_sum'));
    expect(moved(before, after, 'jipjung_network_received_bytes_total')).toBeGreaterThan(bytes);
    expect(moved(before, after, 'jipjung_network_sent_bytes_total')).toBeGreaterThan(0);
    expect(value(after, 'jipjung_connections')).toBe(0);
    expect(value(after, 'jipjung_sessions{state="attached"}')).toBe(0);
    expect(value(after, 'jipjung_queued_units')).toBe(0);
    expect(value(after, 'jipjung_frame_budget_used_bytes')).toBe(0);
  });

  it('shows open connections and sessions while they are open', async () => {
    const c = await TestClient.connect(t.url);
    const during = await scrape();
    expect(value(during, 'jipjung_connections')).toBe(1);
    expect(value(during, 'jipjung_sessions{state="attached"}')).toBe(1);
    await c.bye();
    await c.waitForClose();
  });
});

describe('health', () => {
  it('/healthz is up; /readyz turns 503 while the frame budget is exhausted, and back', async () => {
    expect((await fetch(`${t.base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${t.ops}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', reasons: [], draining: false, workers: { size: 2, ready: 2 } });

    const hog = { heldBytes: 0 };
    const room = t.app.budget.limitBytes - t.app.budget.used;
    t.app.budget.acquire(hog, room);
    try {
      const full = await fetch(`${t.ops}/readyz`);
      expect(full.status).toBe(503);
      // The public one, for balancers and probes, says the same with its status alone.
      const probe = await fetch(`${t.base}/readyz`);
      expect(probe.status).toBe(503);
      expect(await probe.json()).toEqual({ status: 'not_ready' });
      expect(await full.json()).toMatchObject({ status: 'not_ready', reasons: ['budget_exhausted'], budget: { usedBytes: t.app.budget.limitBytes } });
      expect(value(await scrape(), 'jipjung_ready')).toBe(0);
    } finally {
      t.app.budget.release(hog, room);
    }
    expect((await fetch(`${t.ops}/readyz`)).status).toBe(200);
    expect((await fetch(`${t.base}/readyz`)).status).toBe(200);
    expect(value(await scrape(), 'jipjung_ready')).toBe(1);
  });

  it('names every reason an instance is not ready', () => {
    const ok = { draining: false, workersReady: 2, accepting: true, budgetUsedBytes: 0, budgetLimitBytes: 1000, maxFrameBytes: 100 };
    expect(readiness(ok)).toEqual({ ready: true, reasons: [] });
    expect(readiness({ ...ok, budgetUsedBytes: 900 })).toEqual({ ready: true, reasons: [] });
    expect(readiness({ ...ok, budgetUsedBytes: 901 }).reasons).toEqual(['budget_exhausted']);
    expect(readiness({ ...ok, draining: true, workersReady: 0, accepting: false })).toEqual({
      ready: false,
      reasons: ['draining', 'no_workers', 'overloaded'],
    });
  });
});

describe('worker restarts', () => {
  it('a killed worker shows in the logs (worker_exit, worker_start) and in the metrics (restarts by cause, new process)', async () => {
    const before = await scrape();
    const victim = t.app.pool.workers().find((w) => w.slot === 0)!;
    const pid = victim.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => t.app.pool.readyCount === 2 && t.app.pool.workers().find((w) => w.slot === 0)?.pid !== pid, {
      what: 'a new worker in slot 0',
      observed: () => ({ ready: t.app.pool.readyCount, pids: t.app.pool.workers().map((w) => w.pid) }),
    });
    const newPid = t.app.pool.workers().find((w) => w.slot === 0)!.pid!;
    const after = await scrape();

    expect(moved(before, after, 'jipjung_worker_restarts_total{cause="crash"}')).toBe(1);
    expect(moved(before, after, 'jipjung_worker_restarts_total{cause="timeout"}')).toBe(0);
    expect(value(after, 'jipjung_workers_ready')).toBe(2);
    // The slot's process is the new one: its memory is read, its CPU counts from its own start.
    expect(value(after, 'jipjung_worker_resident_memory_bytes{slot="0"}')).toBeGreaterThan(1024 * 1024);
    expect(after.samples.has('jipjung_worker_cpu_seconds_total{slot="0"}')).toBe(true);

    const exit = t.logs.find((l) => l.event === 'worker_exit' && l.workerPid === pid);
    expect(exit).toMatchObject({ level: 'warn', worker: 0, signal: 'SIGKILL', code: null, cause: 'crash', restarts: 0 });
    const start = t.logs.find((l) => l.event === 'worker_start' && l.workerPid === newPid);
    expect(start).toMatchObject({ level: 'info', worker: 0, model: 'brightness', restarts: 1 });
  });
});

describe('deploy/', () => {
  it('the Grafana dashboard asks only for series this instance exports', async () => {
    const e = await scrape();
    const dashboard = JSON.parse(fs.readFileSync(path.join(TEST_DIR, '..', 'deploy', 'grafana', 'jipjung.json'), 'utf8'));
    const exprs: string[] = [];
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if ((k === 'expr' || k === 'query') && typeof v === 'string') exprs.push(v);
          else walk(v);
        }
      }
    };
    walk(dashboard);
    expect(exprs.length).toBeGreaterThan(15);
    const names = new Set(exprs.flatMap((x) => [...x.matchAll(/\b((?:jipjung|process|nodejs)_\w+)/g)].map((m) => m[1])));
    const exported = (name: string) => e.types.has(name) || e.types.has(name.replace(/_(bucket|sum|count)$/, ''));
    expect([...names].filter((n) => !exported(n))).toEqual([]);
    // Every figure of the instance's own dashboard has a panel.
    for (const n of ['jipjung_sessions', 'jipjung_frames_received_total', 'jipjung_frames_dropped_total', 'jipjung_end_to_end_seconds_bucket', 'jipjung_worker_cpu_seconds_total', 'jipjung_worker_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(names.has(n), n).toBe(true);
    }
    const scrapeConfig = fs.readFileSync(path.join(TEST_DIR, '..', 'deploy', 'prometheus', 'prometheus.yml'), 'utf8');
    expect(scrapeConfig).toMatch(/metrics_path: \/metrics/);
  });
});
