/**
 * The capacity search of `--find-capacity`: raise N while steps hold, then
 * bisect between the largest N that held and the smallest that did not.
 * Pure code over a function that runs one step.
 */

export interface SearchOptions {
  /** Factor N grows by while steps hold. */
  growth: number;
  maxSessions: number;
  /** Stop once the gap between held and failed N is within this fraction of the held N. */
  resolution: number;
  /**
   * A step that did not hold while other processes took more than this share of a core (%) did not
   * measure the service: it is run once more, and the second run counts.
   */
  maxOthersPercent: number;
}

export interface SearchStep {
  sessions: number;
  held: boolean;
  othersCpuPercent: number | null;
  /** Set on a step that other processes disturbed and that was run again. */
  disturbed: boolean;
}

export interface SearchResult<S extends SearchStep> {
  /** Every step run, by N (a disturbed step before its second run). */
  steps: S[];
  /** The step of the largest N that held, or null. */
  best: S | null;
}

const disturbedBy = (s: SearchStep, o: SearchOptions) => !s.held && (s.othersCpuPercent ?? 0) > o.maxOthersPercent;

export async function searchCapacity<S extends SearchStep>(run: (sessions: number) => Promise<S>, start: number, o: SearchOptions, log: (msg: string) => void = () => {}): Promise<SearchResult<S>> {
  let n = Math.max(1, start);
  let held = 0;
  let failed = Infinity;
  const steps: S[] = [];
  const tried = new Map<number, S>();
  for (;;) {
    let step = tried.get(n);
    if (!step) {
      step = await run(n);
      steps.push(step);
      if (disturbedBy(step, o)) {
        log(`${n} sessions did not hold while other processes took ${step.othersCpuPercent} % of a core: running it again`);
        step.disturbed = true;
        step = await run(n);
        steps.push(step);
      }
      tried.set(n, step);
    }
    if (step.held) held = Math.max(held, n);
    else failed = Math.min(failed, n);
    let next: number;
    if (failed === Infinity) {
      next = Math.ceil(n * o.growth);
      if (next > o.maxSessions) break;
    } else if (held === 0) {
      if (n <= 1) break;
      next = Math.max(1, Math.floor(n / o.growth));
    } else {
      if (held >= failed || failed - held <= Math.max(1, Math.ceil(held * o.resolution))) break;
      next = Math.round((held + failed) / 2);
    }
    if (tried.has(next)) break;
    n = next;
  }
  // Stable: a disturbed step stays before its second run.
  steps.sort((x, y) => x.sessions - y.sessions);
  return { steps, best: held > 0 ? tried.get(held)! : null };
}
