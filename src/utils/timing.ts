/** Milliseconds from a monotonic clock, for durations only. */
export const nowMs = (): number => performance.now();
