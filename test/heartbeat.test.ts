import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat } from '../src/server/heartbeat.js';

/** A socket that records pings and whether it was cut; a pong is `emit('pong')`. */
class FakeSocket extends EventEmitter {
  pings = 0;
  terminated = false;
  ping(): void {
    this.pings++;
  }
  terminate(): void {
    this.terminated = true;
  }
}

const INTERVAL = 15_000;
let heartbeat: Heartbeat | null = null;
let sockets: FakeSocket[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  sockets = [];
  heartbeat = new Heartbeat(INTERVAL, () => sockets);
});
afterEach(() => {
  heartbeat?.stop();
  vi.useRealTimers();
});

const open = () => {
  const ws = new FakeSocket();
  sockets.push(ws);
  heartbeat!.watch(ws);
  return ws;
};

describe('Heartbeat', () => {
  it('pings every socket once an interval', () => {
    const [a, b] = [open(), open()];
    vi.advanceTimersByTime(INTERVAL - 1);
    expect([a.pings, b.pings]).toEqual([0, 0]);
    vi.advanceTimersByTime(1);
    expect([a.pings, b.pings]).toEqual([1, 1]);
  });

  it('keeps a socket that answers each ping, and cuts one that missed a pong at the next beat', () => {
    const [answers, silent] = [open(), open()];
    for (let beat = 0; beat < 3; beat++) {
      vi.advanceTimersByTime(INTERVAL);
      answers.emit('pong');
    }
    expect(answers).toMatchObject({ pings: 3, terminated: false });
    // Pinged at the first beat, cut at the second, not pinged again.
    expect(silent).toMatchObject({ pings: 1, terminated: true });
  });

  it('counts a socket opened just before a beat as alive: it is pinged, not cut', () => {
    vi.advanceTimersByTime(INTERVAL - 10);
    const late = open();
    vi.advanceTimersByTime(10);
    expect(late).toMatchObject({ pings: 1, terminated: false });
  });

  it('does nothing more once stopped', () => {
    const ws = open();
    heartbeat!.stop();
    vi.advanceTimersByTime(INTERVAL * 3);
    expect(ws).toMatchObject({ pings: 0, terminated: false });
  });
});
