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
/** Units a session is watched for before it is judged: its phase is smoothed over them. */
const JUDGED_FROM = 3;
/** Weight of the newest unit in a session's phase and in its jitter. */
const SMOOTHING = 1 / 4;
/** After its first align a session is left alone for this many periods; after each further one, twice as long. */
const QUIET_PERIODS = 5;
const QUIET_MAX_PERIODS = 120;
/** Crowded: the nearest other phase is closer than this share of the even spacing (period / sessions). */
const CROWDED_SHARE = 1 / 2;
/** Moving must at least double the distance to the nearest other phase, and gain this many ms beyond twice the jitter. */
const MIN_GAIN_MS = 2;
/**
 * Below this even spacing (1000 ms / 250 sessions) units are cut closer together than the network and the
 * event loop place them: there is nothing to align, and no session is judged.
 */
const MIN_SPACING_MS = 4;

interface Entry<K> {
  key: K;
  /** Smoothed phase of the session's units (or the one it was asked to move to), ms in [0, period). */
  phase: number;
  /** Smoothed distance of its units from that phase, ms: the network's and the event loop's jitter. */
  jitter: number;
  /** Units seen. */
  seen: number;
  /** When its last unit was seen, monotonic ms. */
  seenAt: number;
  /** Aligns sent to it. */
  moves: number;
  /** No align before this time, monotonic ms. */
  quietUntil: number;
}

const mod = (x: number, m: number) => ((x % m) + m) % m;

export class UnitAlignment<K = unknown> {
  // An array scanned with a plain loop: observe() runs for every unit of every session.
  private readonly list: Entry<K>[] = [];
  private readonly byKey = new Map<K, Entry<K>>();
  private sweptAt = -Infinity;

  constructor(readonly periodMs: number) {}

  /** Sessions holding a phase. */
  get size(): number {
    return this.list.length;
  }

  /**
   * A unit of `key` was cut at `now` (monotonic ms). Returns the delay, in
   * ms within [0, period), by which the session should shift its capture,
   * or null to leave it where it is.
   */
  observe(key: K, now: number): number | null {
    const period = this.periodMs;
    const at = mod(now, period);
    let me = this.byKey.get(key);
    if (!me) {
      me = { key, phase: at, jitter: 0, seen: 0, seenAt: now, moves: 0, quietUntil: 0 };
      this.byKey.set(key, me);
      this.list.push(me);
    } else {
      // Circular difference in [-period/2, period/2): a unit just past the period's end is near its start.
      const d = mod(at - me.phase + period / 2, period) - period / 2;
      me.phase = mod(me.phase + SMOOTHING * d, period);
      me.jitter += SMOOTHING * (Math.abs(d) - me.jitter);
    }
    me.seenAt = now;
    me.seen++;
    if (now - this.sweptAt >= period) this.sweep(now);
    const n = this.list.length;
    if (n < 2 || period / n < MIN_SPACING_MS || me.seen < JUDGED_FROM || now < me.quietUntil) return null;
    const phase = me.phase;
    let nearest = period;
    for (let i = 0; i < n; i++) {
      const e = this.list[i];
      if (e === me) continue;
      let d = Math.abs(e.phase - phase);
      if (d > period - d) d = period - d;
      if (d < nearest) nearest = d;
    }
    if (nearest >= (CROWDED_SHARE * period) / n) return null;
    // The widest gap between the other sessions' phases, and its middle.
    const others = this.list.filter((e) => e !== me).map((e) => e.phase);
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
    // Where the units land is only known to within the jitter: a move smaller than that is noise.
    if (widest / 2 < Math.max(2 * nearest, nearest + MIN_GAIN_MS + 2 * me.jitter)) return null;
    const delay = mod(Math.round(mod(middle - phase, period)), Math.round(period));
    // Counted at its new phase at once, so that another crowded session does not pick the same gap.
    me.phase = mod(phase + delay, period);
    me.quietUntil = now + delay + Math.min(QUIET_MAX_PERIODS, QUIET_PERIODS * 2 ** me.moves) * period;
    me.moves++;
    return delay;
  }

  /** The session went away, or stopped sending at the full fps: its phase is free. */
  forget(key: K): void {
    const e = this.byKey.get(key);
    if (!e) return;
    this.byKey.delete(key);
    this.remove(e);
  }

  /** Once a period: sessions not seen for a while (closed, paused, throttled) no longer hold a phase. */
  private sweep(now: number): void {
    this.sweptAt = now;
    for (let i = this.list.length - 1; i >= 0; i--) {
      const e = this.list[i];
      if (now - e.seenAt > STALE_PERIODS * this.periodMs) {
        this.byKey.delete(e.key);
        this.remove(e);
      }
    }
  }

  private remove(e: Entry<K>): void {
    const i = this.list.indexOf(e);
    const last = this.list.pop()!;
    if (last !== e) this.list[i] = last;
  }
}
