import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { waitFor } from './helpers/wait.js';

describe('waitFor', () => {
  it("resolves with the condition's first truthy value, sync or async", async () => {
    let n = 0;
    expect(await waitFor(() => ++n >= 3 && { n }, { intervalMs: 1 })).toEqual({ n: 3 });
    expect(await waitFor(async () => 'ready')).toBe('ready');
  });

  it('on timeout names what it waited for and the last value it saw', async () => {
    let n = 0;
    await expect(waitFor(() => ++n > 1e9 && n, { timeoutMs: 30, intervalMs: 5, what: 'a huge count', observed: () => ({ n }) })).rejects.toThrow(
      /timed out after 30 ms waiting for a huge count; last observed: \{"n":\d+\}/,
    );
    await expect(waitFor(() => null, { timeoutMs: 10, what: 'nothing' })).rejects.toThrow(/waiting for nothing; last observed: null$/);
  });

  it('re-checks when woken, without waiting for the interval', async () => {
    const events = new EventEmitter();
    let state = 'idle';
    const waiting = waitFor(() => state === 'done' && state, {
      intervalMs: 60_000,
      timeoutMs: 120_000,
      wake: (check) => {
        events.on('change', check);
        return () => events.off('change', check);
      },
    });
    await new Promise((r) => setImmediate(r));
    state = 'done';
    events.emit('change');
    expect(await waiting).toBe('done');
    expect(events.listenerCount('change')).toBe(0);
  }, 5000);

  it('an exception in the condition ends the wait', async () => {
    await expect(
      waitFor(() => {
        throw new Error('broken probe');
      }),
    ).rejects.toThrow('broken probe');
  });
});
