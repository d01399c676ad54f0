/**
 * Spreads the sessions' units over the unit period, pure state, no I/O.
 *
 * Every session completes a unit once a period (BATCH_FRAMES at FPS: a
 * second by default), at a phase set by when its student started. Students
 * start at random times, so some units complete within a few ms of each
 * other each period, and with a few workers the last of them waits for one
 * that is busy with the others: the same wait, every period, for the same
 * sessions. A session whose units complete much closer to another's than
 * the sessions' even spacing is asked to delay its capture once (an `align`
 * message), so that its units complete in the middle of the widest gap
 * between the others'. The sessions then stay spread, and a unit seldom
 * finds every worker busy until the workers are nearly full.
 *
 * Phases are taken from when the server cuts the unit (its last frame
 * received), so the network's delay is part of what is measured and needs
 * no clock agreement with the client. Only delays are asked for: a client
 * never sends faster than its fps.
 */

/** A session whose units have not been seen for this many periods no longer holds its phase. */
const STALE_PERIODS = 3;
/** After an align, a session is left alone for this many periods (the delay, then its effect). */
const QUIET_PERIODS = 5;
/** Crowded: the nearest other phase is closer than this share of the even spacing (period / sessions). */
const CROWDED_SHARE = 1 / 2;
/** Moving must at least double the distance to the nearest other phase, and by this many ms. */
const MIN_GAIN_MS = 2;

interface Entry {
  /** Phase of the session's last unit (or the one it was asked to move to), ms in [0, period). */
  phase: number;
  /** Units seen: a session is judged from its second, when every session that sends has been seen once. */
  seen: number;
  /** When its last unit was seen, monotonic ms. */
  seenAt: number;
  /** No align before this time, monotonic ms. */
  quietUntil: number;
}

const mod = (x: number, m: number) => ((x % m) + m) % m;

export class UnitAlignment<K = unknown> {
  private readonly entries = new Map<K, Entry>();

  constructor(readonly periodMs: number) {}

  /** Sessions holding a phase. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * A unit of `key` was cut at `now` (monotonic ms). Returns the delay, in
   * ms within [0, period), by which the session should shift its capture,
   * or null to leave it where it is.
   */
  observe(key: K, now: number): number | null {
    const period = this.periodMs;
    const phase = mod(now, period);
    let me = this.entries.get(key);
    if (!me) {
      me = { phase, seen: 0, seenAt: now, quietUntil: 0 };
      this.entries.set(key, me);
    }
    me.phase = phase;
    me.seenAt = now;
    me.seen++;
    if (me.seen < 2 || now < me.quietUntil) return null;
    const others: number[] = [];
    let nearest = period;
    for (const [k, e] of this.entries) {
      if (k === key) continue;
      if (now - e.seenAt > STALE_PERIODS * period) {
        this.entries.delete(k);
        continue;
      }
      others.push(e.phase);
      const d = Math.abs(e.phase - phase);
      nearest = Math.min(nearest, d, period - d);
    }
    if (others.length === 0 || nearest >= (CROWDED_SHARE * period) / (others.length + 1)) return null;
    // The widest gap between the other sessions' phases, and its middle.
    others.sort((a, b) => a - b);
    let widest = others[0] + period - others[others.length - 1];
    let middle = mod(others[others.length - 1] + widest / 2, period);
    for (let i = 1; i < others.length; i++) {
      const gap = others[i] - others[i - 1];
      if (gap > widest) {
        widest = gap;
        middle = others[i - 1] + gap / 2;
      }
    }
    if (widest / 2 < Math.max(2 * nearest, nearest + MIN_GAIN_MS)) return null;
    const delay = mod(Math.round(mod(middle - phase, period)), Math.round(period));
    // Counted at its new phase at once, so that another crowded session does not pick the same gap.
    me.phase = mod(phase + delay, period);
    me.quietUntil = now + delay + QUIET_PERIODS * period;
    return delay;
  }

  /** The session went away, or stopped sending at the full fps: its phase is free. */
  forget(key: K): void {
    this.entries.delete(key);
  }
}
