/**
 * Where the test data lives and the fixture frames, for tests of every
 * tier: nothing here loads the server (test/helpers/app.ts does).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TEST_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TEST_MODELS = path.join(TEST_DIR, 'models');

/** A fixture frame (test/fixtures/frames), as a client would send its image. */
export const frame = (name: string): Buffer => fs.readFileSync(path.join(TEST_DIR, 'fixtures', 'frames', name));

/** The five distinct captures of a still scene ('face' or 'empty'): what a real camera sends. */
export const scene = (name: 'face' | 'empty'): Buffer[] => [frame(`${name}.jpg`), ...[1, 2, 3, 4].map((i) => frame(`${name}-${i}.jpg`))];
