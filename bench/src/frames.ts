import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPython, MODEL_DIR } from '../../dist/ipc/python.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FRAMES_DIR = path.join(ROOT, 'test', 'fixtures', 'frames');

/** What the sessions' cameras show. */
export const FACES = ['still', 'moving', 'turning'] as const;
export type Faces = (typeof FACES)[number];

/**
 * The five distinct 640×480 captures of a face (`face.jpg`, `face-1.jpg` …
 * `face-4.jpg`): the same photo under fresh sensor noise, a student sitting
 * still. Senders cycle them: identical consecutive images would be flagged
 * "frozen" by the default model and take another code path.
 */
export function loadFrames(dir = FRAMES_DIR): Buffer[] {
  const names = ['face.jpg', 'face-1.jpg', 'face-2.jpg', 'face-3.jpg', 'face-4.jpg'];
  return names.map((n) => fs.readFileSync(path.join(dir, n)));
}

/**
 * One of `eval.speed`'s rendered scenes, 640×480 frames at the web client's
 * JPEG quality (70) rendered by the workers' Python from
 * test/fixtures/astronaut.jpg:
 * - `moving`: 20 frames of a head swaying to and fro, 0.4 % of the width and
 *   0.8° from one frame to the next. The default model follows such a move
 *   in the image without the mesh on about 7 frames in 10.
 * - `turning`: 16 frames of a head turning to and fro by 4° of yaw a frame,
 *   which no move in the image explains: the mesh runs on every frame.
 */
export function loadRenderedFrames(scene: Exclude<Faces, 'still'>): Buffer[] {
  const script = 'import base64, sys\nfrom eval.speed import RENDERED\n'
    + `sys.stdout.write("\\n".join(base64.b64encode(f).decode() for f in RENDERED[${JSON.stringify(scene)}]()))\n`;
  const r = spawnSync(findPython(process.env.PYTHON), ['-c', script], {
    cwd: ROOT,
    env: { ...process.env, PYTHONPATH: MODEL_DIR, PYTHONDONTWRITEBYTECODE: '1' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`rendering the ${scene} faces failed: ${(r.stderr || String(r.error)).trim().split('\n').slice(-3).join(' | ')}`);
  const frames = r.stdout.split('\n').filter(Boolean).map((line) => Buffer.from(line, 'base64'));
  if (frames.length < 2) throw new Error(`rendering the ${scene} faces gave no frames`);
  return frames;
}

export function facesFrames(faces: Faces): Buffer[] {
  return faces === 'still' ? loadFrames() : loadRenderedFrames(faces);
}
