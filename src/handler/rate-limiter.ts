/**
 * A token bucket per session, pure state: `ratePerSec` frames a second
 * with a burst of `burst` frames, so a browser whose timer fires late and
 * then catches up is not punished, but a client that sends faster than it
 * was told is.
 */
export class RateLimiter {
  private tokens: number;
  private last: number | null = null;

  constructor(
    private ratePerSec: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  setRate(ratePerSec: number): void {
    this.ratePerSec = ratePerSec;
  }

  get rate(): number {
    return this.ratePerSec;
  }

  take(now: number): boolean {
    if (this.last !== null) this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSec);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Counts events in a sliding window of `windowMs` (for abuse that persists). */
export class WindowCounter {
  private readonly times: number[] = [];

  constructor(private readonly windowMs: number) {}

  add(now: number): number {
    this.times.push(now);
    while (this.times.length > 0 && now - this.times[0] > this.windowMs) this.times.shift();
    return this.times.length;
  }
}
