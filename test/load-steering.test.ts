import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LoadMonitor } from '../src/handler/load-monitor.js';
import type { ThrottleMessage } from '../src/protocol/server-messages.js';
import { LOAD_INTERVAL_MS, LoadSteering, type SteeredSession } from '../src/server/load-steering.js';
import { createLogger } from '../src/utils/logger.js';

const MAX_FPS = 10;
const LATENCY_TARGET_MS = 2000;

/** A session whose pipeline holds the fps it was told, as `SessionPipeline.throttle` does, and counts what its client sent. */
class FakeSession implements SteeredSession {
  readonly sent: ThrottleMessage[] = [];
  readonly pipeline = {
    framesReceived: 0,
    fps: MAX_FPS,
    throttle(fps: number): boolean {
      if (fps === this.fps) return false;
      this.fps = fps;
      return true;
    },
  };
  send(msg: ThrottleMessage): void {
    this.sent.push(msg);
  }
}

let steering: LoadSteering;
let load: LoadMonitor;
let sessions: FakeSession[];
const scheduler = { shedTotal: 0, analysedTotal: 0, wait: 0, oldestWaitMs: () => scheduler.wait };
let logs: Array<Record<string, unknown>>;

beforeEach(() => {
  vi.useFakeTimers();
  Object.assign(scheduler, { shedTotal: 0, analysedTotal: 0, wait: 0 });
  sessions = [];
  logs = [];
  load = new LoadMonitor(MAX_FPS, LATENCY_TARGET_MS);
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line)) });
  steering = new LoadSteering({ sessions: { values: () => sessions.values() }, scheduler, load, logger, maxFps: MAX_FPS });
});
afterEach(() => {
  steering.stop();
  vi.useRealTimers();
});

/** One second: the given sessions send at their fps, the workers analyse `analysed` and shed `shed`, then the check runs. */
function second(o: { senders: FakeSession[]; analysed: number; shed?: number; wait?: number }): void {
  for (const s of o.senders) s.pipeline.framesReceived += s.pipeline.fps;
  scheduler.analysedTotal += o.analysed;
  scheduler.shedTotal += o.shed ?? 0;
  scheduler.wait = o.wait ?? 0;
  vi.advanceTimersByTime(LOAD_INTERVAL_MS);
}

const session = () => {
  const s = new FakeSession();
  sessions.push(s);
  return s;
};

describe('LoadSteering', () => {
  it('shares the measured capacity among the sessions that send, and throttles every session to it', () => {
    const senders = [session(), session()];
    const quiet = [session(), session()];
    second({ senders, analysed: 10 }); // the load monitor's first sample: nothing to compare with
    expect(sessions.every((s) => s.sent.length === 0)).toBe(true);
    // 10 frames analysed in a second while frames are shed, by 2 sessions that send: 5 fps each, not 2.5.
    second({ senders, analysed: 10, shed: 4 });
    for (const s of [...senders, ...quiet]) {
      expect(s.sent).toEqual([{ type: 'throttle', fps: 5, reason: 'overloaded' }]);
      expect(s.pipeline.fps).toBe(5);
    }
    // The same fps again is not repeated.
    second({ senders, analysed: 10, shed: 1 });
    expect(senders[0].sent.filter((m) => m.fps === 5)).toHaveLength(1);
  });

  it('lifts the fps back step by step once the workers keep up, `recovered` at the full fps', () => {
    const senders = [session(), session()];
    second({ senders, analysed: 20 });
    second({ senders, analysed: 10, shed: 4 });
    expect(senders[0].pipeline.fps).toBe(5);
    for (let i = 0; i < 60 && senders[0].pipeline.fps < MAX_FPS; i++) {
      // The workers analyse all that is sent.
      second({ senders, analysed: senders.reduce((n, s) => n + s.pipeline.fps, 0) });
    }
    const fpsSent = senders[0].sent.map((m) => m.fps);
    expect(fpsSent.length).toBeGreaterThan(2);
    expect(fpsSent).toEqual([...fpsSent].sort((a, b) => a - b));
    for (const m of senders[0].sent) expect(m.reason).toBe(m.fps < MAX_FPS ? 'overloaded' : 'recovered');
    expect(senders[0].sent.at(-1)).toEqual({ type: 'throttle', fps: MAX_FPS, reason: 'recovered' });
  });

  it('logs `overload` when it starts refusing new sessions and when it accepts them again', () => {
    const senders = [session()];
    second({ senders, analysed: 0 });
    for (let i = 0; i < 3; i++) second({ senders, analysed: 0, shed: 5, wait: 3000 });
    expect(steering.accepting).toBe(false);
    expect(logs.filter((l) => l.event === 'overload')).toEqual([expect.objectContaining({ level: 'warn', accepting: false, fps: 1 })]);
    second({ senders, analysed: 5, wait: 0 });
    expect(steering.accepting).toBe(true);
    expect(logs.filter((l) => l.event === 'overload').map((l) => l.accepting)).toEqual([false, true]);
  });

  it('tells a session just opened the fps it must send now, when below the configured one', () => {
    const fresh = new FakeSession();
    steering.steerOpened(fresh);
    expect(fresh.sent).toEqual([]);

    const senders = [session(), session()];
    second({ senders, analysed: 10 });
    second({ senders, analysed: 10, shed: 4 });
    const opened = new FakeSession();
    steering.steerOpened(opened);
    expect(opened.sent).toEqual([{ type: 'throttle', fps: 5, reason: 'overloaded' }]);
    expect(opened.pipeline.fps).toBe(5);
    // A resumed session already held to that fps is told again: its new connection has not heard it.
    steering.steerOpened(opened);
    expect(opened.sent).toEqual([
      { type: 'throttle', fps: 5, reason: 'overloaded' },
      { type: 'throttle', fps: 5, reason: 'overloaded' },
    ]);
  });

  it('stops checking once stopped', () => {
    const senders = [session()];
    second({ senders, analysed: 0 });
    steering.stop();
    second({ senders, analysed: 0, shed: 5 });
    second({ senders, analysed: 0, shed: 5 });
    expect(senders[0].sent).toEqual([]);
    expect(load.current.fps).toBe(MAX_FPS);
  });
});
