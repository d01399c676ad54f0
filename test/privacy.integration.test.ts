import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../src/handler/frame-header.js';
import { MODEL_DIR } from '../src/ipc/python.js';
import { scene, startTestApp, TEST_DIR } from './helpers/app.js';
import { TestClient } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff]);

/** Files below `dir` (a few levels deep) changed since `sinceMs` (all of them with 0). */
function changedFiles(dir: string, sinceMs = 0, depth = 4): string[] {
  const out: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (depth > 0 && e.name !== 'node_modules' && e.name !== '.git') out.push(...changedFiles(full, sinceMs, depth - 1));
    } else if (e.isFile()) {
      try {
        if (fs.statSync(full).mtimeMs >= sinceMs) out.push(full);
      } catch {
        /* vanished */
      }
    }
  }
  return out;
}

/** TMPDIR of the process's environment (which the workers inherit), from `dir`, until `restore()` is called. */
function privateTmpdir(dir: string): { restore(): void } {
  const had = Object.hasOwn(process.env, 'TMPDIR');
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return {
    restore() {
      if (had) process.env.TMPDIR = before;
      else delete process.env.TMPDIR;
    },
  };
}

describe('frames are kept private', () => {
  it('nothing the server and workers write holds image bytes', async () => {
    const since = Date.now() - 1000;
    // The server and its workers get a temporary directory of their own, so that everything in it is theirs
    // (another program's JPEG in the shared /tmp is none of this test's business).
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-privacy-'));
    const env = privateTmpdir(tmp);
    let workerEnvs: string[] = [];
    try {
      // Trace level: the most the server ever logs.
      const t = await startTestApp({ LOG_LEVEL: 'trace' });
      try {
        expect(os.tmpdir()).toBe(tmp);
        workerEnvs = t.app.pool.workers().map((w) => fs.readFileSync(`/proc/${w.pid}/environ`, 'latin1'));
        const c = await TestClient.connect(t.url);
        await c.stream(scene('face'), 20);
        // Bad frames too: their rejections are logged.
        c.sendRaw(encodeFrame({ format: 1, seq: 20, captureTs: Date.now() }, scene('face')[0].subarray(0, 5000)));
        c.sendRaw(encodeFrame({ format: 9, seq: 21, captureTs: Date.now() }, scene('face')[0]));
        await c.bye();
      } finally {
        await t.close();
      }
      const logText = JSON.stringify(t.logs);
      expect(t.logs.length).toBeGreaterThan(10);
      expect(t.logs.some((l) => l.event === 'frame_rejected')).toBe(true);
      for (const needle of ['ffd8ff', '/9j/', '\\u00ff\\u00d8', 'ÿØ']) expect(logText.toLowerCase()).not.toContain(needle.toLowerCase());

      // The workers were started with the private directory as their TMPDIR.
      expect(workerEnvs.length).toBe(2);
      for (const environ of workerEnvs) expect(environ.split('\0')).toContain(`TMPDIR=${tmp}`);
      // Where the server and its workers write: the private temporary directory (all of it), and what changed
      // in the server's working directory and in the workers' (the model directory).
      const fixtures = path.join(TEST_DIR, 'fixtures');
      const written = [...new Set([...changedFiles(tmp), ...changedFiles(process.cwd(), since), ...changedFiles(MODEL_DIR, since)])].filter(
        (f) => !f.startsWith(fixtures) && !f.includes(`${path.sep}test-artifacts${path.sep}`),
      );
      const withImages = written.filter((f) => {
        const st = fs.statSync(f, { throwIfNoEntry: false });
        return st && st.size < 64 * 1024 * 1024 && fs.readFileSync(f).includes(JPEG_MAGIC);
      });
      expect(withImages).toEqual([]);
    } finally {
      env.restore();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('an ended session leaves its figures and windows in the store, not its per-frame signals or model context', async () => {
    const t = await startTestApp();
    try {
      const c = await TestClient.connect(t.url);
      await c.stream(scene('face'), 50);
      await c.bye();
      expect(c.results('batch').some((r) => r.frames?.some((f: Record<string, unknown>) => f.box !== undefined))).toBe(true);
      await c.waitForClose();
      const id = c.welcome!.sessionId;
      // The server saves what is kept of the session once it has seen the connection close (after bye,
      // the last unit's checkpoint is already marked ended, with everything a live session has).
      const stored = await waitFor(
        async () => {
          const record = await t.app.store.load(id);
          return record?.context === null && record;
        },
        { what: `the ended record of session ${id}` },
      );
      expect(stored).toMatchObject({ id, ended: true, recent: [], context: null, builder: null, accountedSeqs: [] });
      expect(stored!.windows).toHaveLength(1);
      expect(JSON.stringify(stored)).not.toMatch(/"box"|"faceScore"|"frames"/);
      // What GET /v1/sessions/:id shows of it is all there.
      expect(stored!.outcomes.analysed).toBe(50);
      expect(stored!.scoreFrames).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
  }, 60_000);
});
