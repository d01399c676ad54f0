import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FRAMES_DIR = path.join(ROOT, 'test', 'fixtures', 'frames');

/**
 * The five distinct 640×480 captures of a face (`face.jpg`, `face-1.jpg` …
 * `face-4.jpg`). Senders cycle them: identical consecutive images would be
 * flagged "frozen" by the default model and take another code path.
 */
export function loadFrames(dir = FRAMES_DIR): Buffer[] {
  const names = ['face.jpg', 'face-1.jpg', 'face-2.jpg', 'face-3.jpg', 'face-4.jpg'];
  return names.map((n) => fs.readFileSync(path.join(dir, n)));
}
