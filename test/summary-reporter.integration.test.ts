/**
 * The closing line counts what happened: vitest runs in a child process over
 * fixture suites that fail in each way a run can fail outside a test.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = path.resolve(import.meta.dirname, 'fixtures', 'vitest-failures');
const vitest = path.resolve(import.meta.dirname, '..', 'node_modules', 'vitest', 'vitest.mjs');

function run(filter: string): { status: number | null; lines: string[] } {
  const r = spawnSync(process.execPath, [vitest, 'run', filter], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, JIPJUNG_TEST_COUNT_FILE: '', NO_COLOR: '1', CI: 'true' },
    timeout: 60_000,
  });
  return { status: r.status, lines: r.stdout.trim().split('\n') };
}

describe('summary reporter', () => {
  it('counts a failed beforeAll as a failure and its suite\'s tests as not run', () => {
    const r = run('before-all-throws');
    expect(r.status).not.toBe(0);
    expect(r.lines.at(-1)).toBe('1 passed, 1 failed, 0 skipped');
    expect(r.lines).toContain("2 tests did not run because their suite's set-up failed");
    expect(r.lines.join('\n')).toContain('set-up failed on purpose');
  });

  it('counts a failed afterAll as a failure', () => {
    const r = run('after-all-throws');
    expect(r.status).not.toBe(0);
    expect(r.lines.at(-1)).toBe('1 passed, 1 failed, 0 skipped');
  });

  it('counts a file that fails to load as a failure', () => {
    const r = run('load-fails');
    expect(r.status).not.toBe(0);
    expect(r.lines.at(-1)).toBe('0 passed, 1 failed, 0 skipped');
  });

  it('counts an unhandled error as a failure', () => {
    const r = run('unhandled');
    expect(r.status).not.toBe(0);
    expect(r.lines.at(-1)).toBe('1 passed, 1 failed, 0 skipped');
    expect(r.lines.join('\n')).toContain('unhandled error: unhandled on purpose');
  });

  it('counts only tests marked skip as skipped', () => {
    const r = run('skipped');
    expect(r.status).toBe(0);
    expect(r.lines.at(-1)).toBe('1 passed, 0 failed, 1 skipped');
  });
});
