/**
 * Real people through the whole service: webcam-like frames of photos from
 * the real-face set (test/fixtures/faces/) streamed to a real server running
 * the default model. The people are those the earlier keypoint pose read as
 * looking down (31–37°) every window, neutral and smiling, and a selfie.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPython, MODEL_DIR } from '../src/ipc/python.js';
import { startTestApp, TEST_DIR, type TestApp } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

const PEOPLE = ['london-042', 'london-smiling-042', 'london-105', 'london-smiling-172', 'selfie-distance-45cm'];
const FRAMES = 50; // one 10-s window

/** 640×480 JPEG frames of a photo on a noisy wall (model/tests/frames.py), made in memory. */
function framesOf(name: string): Buffer[] {
  const code = [
    'import sys, base64',
    'from tests.frames import canvas',
    `path = ${JSON.stringify(path.join(TEST_DIR, 'fixtures', 'faces', `${name}.jpg`))}`,
    `for k in range(${FRAMES}): sys.stdout.write(base64.b64encode(canvas(path, seed=k)).decode() + "\\n")`,
  ].join('\n');
  const r = spawnSync(findPython(process.env.PYTHON), ['-c', code], {
    env: { ...process.env, PYTHONPATH: MODEL_DIR },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`making frames of ${name} failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((line) => Buffer.from(line, 'base64'));
}

describe('real people through the service', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  it('reads each person looking at the camera as focused from the first window, with nothing lowering the score', async () => {
    const sessions = await Promise.all(
      PEOPLE.map(async (name) => {
        const c = await TestClient.connect(t.url);
        await c.stream(framesOf(name), FRAMES, 25);
        await c.until(() => c.results('window').length === 1);
        c.close();
        return { name, batches: c.results('batch'), window: c.results('window')[0] };
      }),
    );
    for (const { name, batches, window } of sessions) {
      expect(batches.map((b) => b.state), name).toEqual(Array(FRAMES / 5).fill('focused'));
      expect(window.state, name).toBe('focused');
      expect(window.score, name).toBeGreaterThanOrEqual(70);
      expect(window.signals.reasons, name).toEqual([]);
      expect(Math.abs(window.signals.pitch), name).toBeLessThan(15);
      // Calibration ran during the window and learnt this person's neutral.
      expect(batches[0].signals.calibration.running, name).toBe(true);
      expect(window.signals.calibration, name).toMatchObject({ running: false, progress: 1 });
    }
  });
});
