import { describe, expect, it } from 'vitest';
import { searchCapacity, type SearchOptions, type SearchStep } from '../bench/src/capacity-search.js';

const OPTIONS: SearchOptions = { growth: 1.5, maxSessions: 3000, resolution: 0.05, maxOthersPercent: 5 };

/** A machine that holds up to `capacity` sessions; `others(n, run)` is what other processes took in a step. */
function machine(capacity: number, others: (n: number, run: number) => number = () => 0) {
  const runs: number[] = [];
  const run = async (sessions: number): Promise<SearchStep> => {
    const nth = runs.filter((n) => n === sessions).length;
    runs.push(sessions);
    const othersCpuPercent = others(sessions, nth);
    // Other processes take capacity away while they run.
    return { sessions, held: sessions <= capacity * (1 - othersCpuPercent / 100), othersCpuPercent, disturbed: false };
  };
  return { run, runs };
}

describe('capacity search', () => {
  it('grows by the factor while steps hold, then bisects to the resolution', async () => {
    const m = machine(70);
    const { steps, best } = await searchCapacity(m.run, 20, OPTIONS);
    expect(m.runs.slice(0, 5)).toEqual([20, 30, 45, 68, 102]);
    expect(best!.sessions).toBeLessThanOrEqual(70);
    expect(best!.sessions).toBeGreaterThanOrEqual(70 - Math.ceil(70 * OPTIONS.resolution));
    expect(steps.map((s) => s.sessions)).toEqual([...m.runs].sort((a, b) => a - b));
    expect(steps.some((s) => s.disturbed)).toBe(false);
  });

  it('runs a step that failed while other processes took the CPU once more, and counts the second run', async () => {
    // At 45 sessions, another process takes 40 % of a core in the first run only.
    const m = machine(70, (n, run) => (n === 45 && run === 0 ? 40 : 0));
    const logged: string[] = [];
    const { steps, best } = await searchCapacity(m.run, 20, OPTIONS, (msg) => logged.push(msg));
    expect(m.runs.filter((n) => n === 45)).toHaveLength(2);
    const at45 = steps.filter((s) => s.sessions === 45);
    expect(at45.map((s) => [s.held, s.disturbed])).toEqual([
      [false, true],
      [true, false],
    ]);
    expect(best!.sessions).toBeGreaterThanOrEqual(66);
    expect(logged.join('\n')).toContain('45 sessions did not hold while other processes took 40 % of a core');
  });

  it('runs it once more only: a second failure counts', async () => {
    const m = machine(70, (n) => (n === 45 ? 40 : 0));
    const { steps, best } = await searchCapacity(m.run, 20, OPTIONS);
    expect(m.runs.filter((n) => n === 45)).toHaveLength(2);
    expect(steps.filter((s) => s.sessions === 45).map((s) => s.held)).toEqual([false, false]);
    expect(best!.sessions).toBeLessThan(45);
  });

  it('does not run again a step that failed on its own, or one that held while others took the CPU', async () => {
    const m = machine(70, (n) => (n === 30 ? 4 : n === 45 ? 20 : 0));
    // 30 held despite 4 %; 45 held at 20 % (45 ≤ 70 × 0.8); 102 failed with nobody else running.
    const { steps } = await searchCapacity(m.run, 20, OPTIONS);
    for (const n of new Set(m.runs)) expect(m.runs.filter((x) => x === n), `${n} sessions`).toHaveLength(1);
    expect(steps.some((s) => s.disturbed)).toBe(false);
  });

  it('goes down from a start that fails, and reports no capacity when nothing holds', async () => {
    const m = machine(0);
    const { best } = await searchCapacity(m.run, 10, OPTIONS);
    expect(best).toBeNull();
    expect(m.runs).toEqual([10, 6, 4, 2, 1]);
  });
});
