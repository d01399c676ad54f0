import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS, type ErrorSpec } from '../src/handler/errors.js';
import { TEST_DIR } from './helpers/frames.js';

const doc = fs.readFileSync(path.join(TEST_DIR, '..', 'docs', 'errors.md'), 'utf8');
const rows = new Map(
  [...doc.matchAll(/^\| `([a-z_]+)` \| (yes|no) \| (\d+|—) \| (\w+) \|/gm)].map((m) => [m[1], { fatal: m[2] === 'yes', close: m[3], level: m[4] }]),
);

describe('docs/errors.md and the error registry', () => {
  it('list the same codes', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERRORS).sort());
  });

  for (const [code, spec] of Object.entries(ERRORS) as Array<[string, ErrorSpec]>) {
    it(`${code}: same fatality, close code and log level`, () => {
      const row = rows.get(code);
      expect(row).toBeDefined();
      expect(row!.fatal).toBe(spec.fatal);
      expect(row!.close).toBe(spec.closeCode === undefined ? '—' : String(spec.closeCode));
      expect(row!.level).toBe(spec.logLevel);
    });
  }

  it('every fatal error has a close code', () => {
    for (const spec of Object.values(ERRORS) as ErrorSpec[]) if (spec.fatal) expect(spec.closeCode).toBeGreaterThanOrEqual(1000);
  });
});
