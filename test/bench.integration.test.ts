import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TickGate, type SessionOutcome } from '../bench/src/load-generator.js';
import { alignedAfter, seededRandom } from '../bench/src/phases.js';
import { accountSession, checkArithmetic, frameCosts, rawCpuMsPerFrame, sumAccounting, type StepReport } from '../bench/src/report.js';
import type { RawResult } from '../bench/src/raw-throughput.js';
import { loadRenderedFrames } from '../bench/src/frames.js';
import { DEFAULTS, runBench, writeOutputs } from '../bench/src/runner.js';
import { inspectJpeg } from '../src/handler/jpeg.js';

/** A session as the generator records it, for the arithmetic alone. */
function outcome(sent: number, summary: Record<string, any> | null, analysedInResults: number, shedInResults: number): SessionOutcome {
  return {
    index: 0,
    counts: {
      sent,
      withheld: 0,
      batches: 0,
      windows: 0,
      analysedInResults,
      counts: { lost: 0, rejected: 0, duplicate: 0, late: 0, rateLimited: 0, shed: shedInResults },
      errors: {},
      throttles: 0,
      aligns: 0,
      firstThrottleAt: null,
      minFps: 5,
      notices: 0,
      windowBatches: 0,
      slotsCovered: sent,
    },
    summary,
    closed: { code: 1000, reason: 'bye' },
    openError: null,
  };
}

describe('bench report arithmetic', () => {
  it('gives every frame sent one outcome, lost being what the server never counted', () => {
    const s = outcome(
      100,
      { framesReceived: 98, framesAnalyzed: 90, framesRejected: 1, framesDropped: 7, dropped: { shed: 5, rate_limited: 2 } },
      90,
      5,
    );
    const a = accountSession(s);
    expect(a).toMatchObject({ sent: 100, analysed: 90, shed: 5, rejected: 1, dropped: 2, lost: 2, droppedByReason: { rate_limited: 2 } });
    expect(checkArithmetic([s], sumAccounting([a]))).toEqual({ ok: true, problems: [] });
  });

  it('reports a summary that disagrees with itself or with the results', () => {
    const s = outcome(10, { framesReceived: 10, framesAnalyzed: 9, framesRejected: 0, framesDropped: 0, dropped: {} }, 8, 0);
    const check = checkArithmetic([s], sumAccounting([accountSession(s)]));
    expect(check.ok).toBe(false);
    expect(check.problems.join('\n')).toMatch(/received 10 ≠ analysed \+ rejected \+ dropped/);
    expect(check.problems.join('\n')).toMatch(/results say 8 frames analysed, the summary 9/);
  });
});

describe('bench CPU costs per frame', () => {
  const usage = (cpuPercent: number) => ({ pid: 1, cpuPercent, rssStartMB: 0, rssEndMB: 0, rssMaxMB: 0 });
  const raw = (framesPerSecond: number, cpu: number[]) => ({ framesPerSecond, workerUsage: cpu.map(usage) }) as unknown as RawResult;

  it("turns each process's share of a core into ms of CPU per analysed frame", () => {
    // 10 % of a core is 100 ms of CPU a second; at 400 frames/s, 0.25 ms a frame.
    const step = { window: { analysedPerSecond: 400 }, server: usage(10), workers: [usage(70), usage(80)], generator: usage(12) } as unknown as StepReport;
    // Raw: 190 % of a core for 500 frames/s before, 180 % for 450 after: 3.8 and 4.0 ms a frame.
    const alone = rawCpuMsPerFrame([raw(500, [95, 95]), raw(450, [90, 90])]);
    expect(alone).toBe(3.9);
    expect(frameCosts(step, alone)).toEqual({ serverMs: 0.25, workersMs: 3.75, generatorMs: 0.3, modelAloneMs: 3.9, serverToModel: 0.064 });
  });

  it('says nothing it cannot know', () => {
    expect(rawCpuMsPerFrame([null, raw(0, [50])])).toBeNull();
    const idle = { window: { analysedPerSecond: 0 }, server: usage(1), workers: [], generator: null } as unknown as StepReport;
    expect(frameCosts(idle, 3.9)).toEqual({ serverMs: null, workersMs: null, generatorMs: null, modelAloneMs: 3.9, serverToModel: null });
  });
});

describe('bench smoke run', () => {
  it('runs a few sessions for a few seconds and its figures add up', async () => {
    const report = await runBench({
      ...DEFAULTS,
      model: 'noop',
      sessions: [3],
      durationS: 3,
      rampS: 0.5,
      settleS: 0.5,
      workers: 1,
      rawSeconds: 1,
      rawEachStep: true,
      rawWarmupS: 0.5,
      quiet: true,
      command: 'test/bench.test.ts',
    });
    expect(report.raw?.framesPerSecond).toBeGreaterThan(0);
    const [step] = report.steps;
    const f = step.frames;
    expect(step.arithmetic).toEqual({ ok: true, problems: [] });
    expect(f.sent).toBeGreaterThan(0);
    expect(f.sent).toBe(f.analysed + f.shed + f.rejected + f.dropped + f.lost);
    expect(f.sessionsWithSummary).toBe(3);
    expect(step.opened).toBe(3);
    expect(step.window.batches).toBeGreaterThan(0);
    expect(step.window.sessionsWithoutResults).toBe(0);
    expect(step.latencyMs!.p50).toBeLessThanOrEqual(step.latencyMs!.max);
    expect(step.server?.rssMaxMB).toBeGreaterThan(0);
    expect(step.workers).toHaveLength(1);
    expect(step.serverExited).toBe(false);
    // Raw runs just around the step (the one after it is also the run after the steps), which its costs are taken against.
    expect(step.rawAround).toEqual([report.raw, report.rawAfter]);
    expect(step.costs?.modelAloneMs).toBe(rawCpuMsPerFrame(step.rawAround));
    expect(step.costs?.modelAloneMs).toBeGreaterThan(0);
    expect(step.costs?.serverMs).toBeCloseTo((step.server!.cpuPercent * 10) / step.window.analysedPerSecond, 2);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-bench-'));
    try {
      const svg = writeOutputs(report, path.join(dir, 'report.json'));
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')).steps[0].frames).toEqual(f);
      expect(fs.readFileSync(svg!, 'utf8')).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it.each(['moving', 'turning'] as const)('renders the %s faces: 640×480 JPEGs, each frame moved from the one before', (scene) => {
    const rendered = loadRenderedFrames(scene);
    expect(rendered.length).toBeGreaterThanOrEqual(10);
    for (const [i, frame] of rendered.entries()) {
      expect(inspectJpeg(frame, { maxWidth: 1920, maxHeight: 1920 })).toEqual({ ok: true, width: 640, height: 480 });
      // Not one capture over and over, as the still face's are.
      expect(frame.equals(rendered[(i + 1) % rendered.length])).toBe(false);
    }
    // How each scene moves, and what the model does with it (a network pass
    // on about 3 frames in 10, or on every one), is checked in
    // model/tests/test_speed_paths.py.
  }, 60_000);

  it('replaces sessions that reach their lifetime and accounts for every one of them', async () => {
    const report = await runBench({
      ...DEFAULTS,
      model: 'noop',
      sessions: [3],
      lifetimeS: 2,
      durationS: 4,
      rampS: 0.5,
      settleS: 0.5,
      workers: 1,
      rawSeconds: 0,
      quiet: true,
      command: 'test/bench.test.ts',
    });
    const [step] = report.steps;
    const f = step.frames;
    expect(step.lifetimeS).toBe(2);
    // Three slots over ~6.5 s of sending, each session 2 s plus its handshake.
    expect(step.opened).toBeGreaterThanOrEqual(6);
    expect(step.openErrors).toEqual({});
    expect(step.arithmetic).toEqual({ ok: true, problems: [] });
    expect(f.sessionsWithSummary).toBe(step.opened);
    expect(f.sent).toBe(f.analysed + f.shed + f.rejected + f.dropped + f.lost);
    // Each session waited for its results before bye, so nothing was left unanswered or lost.
    expect(f.lost).toBe(0);
    expect(step.window.unanswered).toBe(0);
    expect(step.abnormalCloses).toEqual({});
    expect(step.window.sessionsWithoutResults).toBe(0);
  }, 120_000);
});

describe('a throttled bench session', () => {
  it('sends the share of its ticks the throttle asks for, spread evenly', () => {
    for (const share of [0.68, 0.5, 0.3, 0.02]) {
      const gate = new TickGate();
      const sent = Array.from({ length: 1000 }, () => gate.pass(share));
      expect(sent.filter(Boolean).length).toBeGreaterThanOrEqual(Math.floor(share * 1000));
      expect(sent.filter(Boolean).length).toBeLessThanOrEqual(Math.ceil(share * 1000) + 1);
      // No two sends closer than the share allows, no gap longer than one send's worth of ticks.
      const at = sent.flatMap((s, i) => (s ? [i] : []));
      const gaps = at.slice(1).map((t, k) => t - at[k]);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(Math.floor(1 / share));
      expect(Math.max(...gaps)).toBeLessThanOrEqual(Math.ceil(1 / share));
    }
  });
});

describe('bench session phases', () => {
  it('start each session at its own phase of the unit period, whenever it was opened', () => {
    const anchor = 1234.5;
    for (const offset of [0, 1, 317.25, 999.9]) {
      for (let now = anchor; now < anchor + 5000; now += 37.3) {
        const at = alignedAfter(now, anchor, offset, 1000);
        expect(at).toBeGreaterThanOrEqual(now - 1e-9);
        expect(at).toBeLessThan(now + 1000);
        const phase = (at - anchor) % 1000;
        expect(Math.min(Math.abs(phase - offset), 1000 - Math.abs(phase - offset))).toBeLessThan(1e-6);
      }
    }
  });

  it('draws phases uniformly, and the same ones again from the same seed', () => {
    const draw = (seed: number) => {
      const random = seededRandom(seed);
      return Array.from({ length: 20_000 }, () => random());
    };
    const a = draw(1);
    expect(draw(1)).toEqual(a);
    expect(draw(2)).not.toEqual(a);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThan(1);
    const tenths = Array.from({ length: 10 }, (_, k) => a.filter((x) => x >= k / 10 && x < (k + 1) / 10).length);
    for (const n of tenths) expect(Math.abs(n - 2000)).toBeLessThan(150);
  });
});
