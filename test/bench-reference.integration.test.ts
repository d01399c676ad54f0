import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceServer } from '../bench/src/reference-process.js';
import { capacityRatio, cpuCeiling, referenceRatios, type BenchReport, type FrameCosts, type StepReport } from '../bench/src/report.js';
import { DEFAULT_MODEL_SPEC, DEFAULTS, runBench } from '../bench/src/runner.js';
import { formatReport } from '../bench/src/table.js';
import { TestClient } from './helpers/client.js';
import { scene } from './helpers/frames.js';

describe('the reference server speaks the part of protocol v1 the load generator uses', () => {
  let server: ReferenceServer;
  beforeAll(async () => {
    server = await ReferenceServer.start({ model: DEFAULT_MODEL_SPEC });
  });
  afterAll(() => server.stop());

  it('answers every frame: a batch per 5 seqs, the rest and the window at bye, a summary that adds up', async () => {
    const client = await TestClient.connect(server.url);
    expect(client.welcome).toMatchObject({ protocol: 1, fps: 5, batchFrames: 5, windowFrames: 50, resumed: false, auth: 'demo' });
    client.sendRaw(Buffer.from('0101000000000000', 'hex')); // shorter than the 16-byte header
    await client.stream(scene('face'), 7);
    const first = await client.waitFor((m) => m.type === 'result' && m.kind === 'batch');
    expect(first).toMatchObject({ resultId: 1, seqFrom: 0, seqTo: 4, framesAnalyzed: 5, counts: { lost: 0, rejected: 0, shed: 0 } });
    expect(first.frames.map((f: any) => [f.seq, f.analysed])).toEqual([0, 1, 2, 3, 4].map((seq) => [seq, true]));
    const summary = await client.bye();
    expect(client.errors()).toEqual([expect.objectContaining({ code: 'frame_invalid', fatal: false })]);
    const [, last] = client.results('batch');
    expect(last).toMatchObject({ resultId: 2, seqFrom: 5, seqTo: 6, framesAnalyzed: 2 });
    expect(client.results('window')).toEqual([expect.objectContaining({ resultId: 3, seqFrom: 0, seqTo: 6, framesAnalyzed: 7 })]);
    expect(summary).toMatchObject({ framesReceived: 8, framesAnalyzed: 7, framesRejected: 1, framesDropped: 0, framesLost: 0, results: 3 });
    expect(await client.waitForClose()).toEqual({ code: 1000, reason: 'bye' });
  });

  it('wants hello first, and the stream on /v1/stream only', async () => {
    const client = await TestClient.connect(server.url, null);
    client.sendFrame(scene('face')[0]);
    expect(await client.waitForClose()).toMatchObject({ code: 1008 });
    expect(client.errors()).toEqual([expect.objectContaining({ code: 'hello_required' })]);

    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(server.url.replace('/v1/stream', '/v1/other'));
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => reject(new Error('upgraded on another path')));
      ws.once('error', () => {});
    });
    expect(status).toBe(404);
  });
});

describe('bench --reference', () => {
  it('runs each step against the service and then the reference, with the same phases, and both answer every frame', async () => {
    const report = await runBench({
      ...DEFAULTS,
      sessions: [2],
      durationS: 3,
      rampS: 0.5,
      settleS: 0.5,
      workers: 1,
      rawSeconds: 0,
      phaseSpreadS: 0.2,
      reference: true,
      quiet: true,
      command: 'test/bench-reference.integration.test.ts',
    });
    expect(report.phases).toEqual({ seed: 1, spreadS: 0.2 });
    expect(report.steps).toHaveLength(1);
    expect(report.reference?.steps).toHaveLength(1);
    for (const step of [report.steps[0], report.reference!.steps[0]]) {
      const f = step.frames;
      expect(step.sessions).toBe(2);
      expect(step.arithmetic).toEqual({ ok: true, problems: [] });
      expect(f.sessionsWithSummary).toBe(2);
      expect(f.sent).toBeGreaterThan(0);
      expect(step.window.unanswered).toBe(0);
      expect(step.abnormalCloses).toEqual({});
      expect(step.latencyMs?.count).toBeGreaterThan(0);
    }
    // The reference analyses every frame it is sent: nothing shed, rejected, dropped or lost.
    const ref = report.reference!.steps[0];
    expect(ref.frames).toMatchObject({ analysed: ref.frames.sent, shed: 0, rejected: 0, dropped: 0, lost: 0 });
    expect(ref.serverExited).toBe(false);
    expect(ref.server?.cpuPercent).toBeGreaterThan(0);
    // Its one process is all it costs: its CPU a frame, with no workers beside it.
    expect(ref.costs?.serverMs).toBeCloseTo((ref.server!.cpuPercent * 10) / ref.window.analysedPerSecond, 2);
    expect(ref.costs?.workersMs).toBeNull();
    expect(report.reference?.cpuCeiling).toBeNull(); // fixed steps: no capacity to bound

    const text = formatReport(report);
    expect(text).toMatch(/first 0\.2 s of the unit period \(seed 1\)/);
    expect(text).toMatch(/^2\s+service\s+\d+/m);
    expect(text).toMatch(/^2\s+reference\s+\d+/m);
    expect(text).toMatch(/N=2 reference: .*CPU per analysed frame: reference process [\d.]+, generator [\d.]+ ms/);
    expect(text).toMatch(/service ÷ reference, N=2: latency p50 [\d.e-]+, p95 [\d.e-]+, p99 [\d.e-]+/);
  }, 180_000);
});

describe('service ÷ reference', () => {
  const step = (sessions: number, p50: number, p95: number, p99: number) => ({ sessions, latencyMs: { p50, p95, p99 } }) as unknown as StepReport;

  it('divides the latency percentiles of the same N, keeping three digits of a ratio far below 1', () => {
    const service = [step(20, 50, 90, 120), step(40, 35, 60, 91)];
    const reference = [step(40, 14_467, 23_282, 23_708), step(20, 25, 45, 40)];
    expect(referenceRatios(service, reference)).toEqual([
      { sessions: 20, p50: 2, p95: 2, p99: 3 },
      { sessions: 40, p50: 0.00242, p95: 0.00258, p99: 0.00384 },
    ]);
    expect(referenceRatios(service, [])).toEqual([]);
  });

  it('divides the capacities when both held some N', () => {
    const cap = (sessions: number) => ({ sessions, analysedPerSecond: 0, efficiency: null, serverToModel: null, rawFramesPerSecond: null });
    const reference = (c: BenchReport['capacity']) => ({ server: '', steps: [], capacity: c, cpuCeiling: null });
    expect(capacityRatio({ capacity: cap(70), reference: reference(cap(28)) })).toBe(2.5);
    expect(capacityRatio({ capacity: cap(70), reference: reference(null) })).toBeNull();
    expect(capacityRatio({ capacity: cap(70), reference: null })).toBeNull();
  });

  it('bounds the capacity ratio by the CPU a frame of both capacity steps', () => {
    const cap = (sessions: number) => ({ sessions, analysedPerSecond: 0, efficiency: null, serverToModel: null, rawFramesPerSecond: null });
    const costs = (serverMs: number | null, workersMs: number | null, generatorMs: number | null): FrameCosts => ({ serverMs, workersMs, generatorMs, modelAloneMs: null, serverToModel: null });
    const at = (sessions: number, held: boolean, c: FrameCosts) => ({ sessions, held, costs: c }) as unknown as StepReport;
    const service = [at(168, true, costs(0.3, 1.83, 0.11)), at(176, true, costs(0.29, 1.85, 0.11)), at(183, false, costs(0.39, 2.14, 0.16))];
    const ref = { server: '', capacity: cap(110), cpuCeiling: null, steps: [at(110, false, costs(2.5, null, 0.1)), at(110, true, costs(1.77, null, 0.1)), at(115, false, costs(1.74, null, 0.09))] };
    // 2 cores × 1.77 ÷ (0.29 + 1.85 + 0.11): the disturbed first run of 110 (it did not hold, so it ran again) and the other steps that did not hold are not the capacity.
    expect(cpuCeiling(2, service, cap(176), ref)).toEqual({ cores: 2, serviceMs: 2.25, referenceMs: 1.77, ratio: 1.57 });
    expect(cpuCeiling(4, service, cap(176), ref)?.ratio).toBe(3.15);
    expect(cpuCeiling(2, service, cap(176), { ...ref, capacity: null })).toBeNull();
    expect(cpuCeiling(2, service, null, ref)).toBeNull();
    expect(cpuCeiling(2, [at(176, true, costs(null, 1.85, 0.11))], cap(176), ref)).toBeNull();
    expect(cpuCeiling(2, service, cap(176), null)).toBeNull();
  });
});
