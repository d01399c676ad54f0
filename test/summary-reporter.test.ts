/** The counts the closing line of `npm test` adds up, read from each runner's output. */
import { describe, expect, it } from 'vitest';

describe('Python test count', () => {
  it('reads unittest\'s closing lines', async () => {
    const { countUnittest } = await import('../scripts/test-count.mjs');
    expect(countUnittest('....\n---\nRan 4 tests in 0.1s\n\nOK\n', 0)).toEqual({ passed: 4, failed: 0, skipped: 0 });
    expect(countUnittest('Ran 10 tests in 2.0s\n\nOK (skipped=3)\n', 0)).toEqual({ passed: 7, failed: 0, skipped: 3 });
    expect(countUnittest('Ran 10 tests in 2.0s\n\nFAILED (failures=1, errors=2, skipped=1)\n', 1)).toEqual({ passed: 6, failed: 3, skipped: 1 });
    // Crashed before counting, or a non-zero exit that counted no failure.
    expect(countUnittest('Traceback (most recent call last):\n', 1).failed).toBe(1);
    expect(countUnittest('Ran 3 tests in 0.1s\n\nOK\n', 1).failed).toBe(1);
  });
});
