/**
 * The one way tests wait: poll a condition until it holds. Tests wait for
 * what they can observe (a message, a log line, a metric, a port), never
 * for a fixed time, so a busy machine makes them slower, not red.
 */

export interface WaitOptions {
  /** Give up after this long; a timeout is a failure naming `what`. */
  timeoutMs?: number;
  /** Time between two checks when nothing wakes the wait earlier. */
  intervalMs?: number;
  /** What is waited for, for the timeout's message ("the summary", "redis-server on 6400"). */
  what?: string;
  /**
   * Re-check at once when something happens (a message arrives, a socket
   * closes) instead of at the next interval: called with the wake-up
   * function, returns what unsubscribes it.
   */
  wake?: (check: () => void) => () => void;
  /** What to report on timeout when the condition's own last value (often `false`) says too little. */
  observed?: () => unknown;
}

/** Falsy values; the condition holds once it returns anything else. */
type Falsy = false | 0 | '' | null | undefined;

const DEFAULT_TIMEOUT_MS = 20_000;
const DEFAULT_INTERVAL_MS = 25;

/** A short, readable account of a value for a timeout message. */
export function describeValue(value: unknown, maxChars = 500): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > maxChars ? `${text.slice(0, maxChars)}… (${text.length} chars)` : text;
}

/**
 * Resolves with the condition's first truthy value. The condition may be
 * async (a fetch, a Redis read); an exception it throws ends the wait.
 * On timeout, throws an error naming `what` and the last value observed.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitOptions = {}): Promise<Exclude<T, Falsy>> {
  const { timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = DEFAULT_INTERVAL_MS, what = 'a condition', wake, observed } = options;
  const deadline = Date.now() + timeoutMs;
  let wakeUp: (() => void) | null = null;
  const unsubscribe = wake?.(() => wakeUp?.());
  try {
    for (;;) {
      const value = await condition();
      if (value) return value as Exclude<T, Falsy>;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last observed: ${describeValue(observed ? observed() : value)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(intervalMs, left));
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeUp = null;
    }
  } finally {
    unsubscribe?.();
  }
}
